/* err.h: names, statuses and messages of the codes in err-t.h. */
#ifndef FIREBREAK_ERR_H
#define FIREBREAK_ERR_H

#include "err-t.h"

/* err is 0 or a negative code from FB_ERR_MAP; unknown codes map to "io". */
const char *fb_err_name(int err);
const char *fb_err_message(int err);
int fb_err_status(int err);

#endif

/* postmortem.h: the blameless postmortem draft, in Markdown. */
#ifndef FIREBREAK_POSTMORTEM_H
#define FIREBREAK_POSTMORTEM_H

#include <jansson.h>

#include "buf-t.h"

/* Writes the draft for incident (with its timeline: events oldest first,
 * each with t_plus_s) into out. Returns 0 or the buffer's error. */
int postmortem_write(const json_t *incident, const json_t *timeline, struct fb_buf *out);

#endif

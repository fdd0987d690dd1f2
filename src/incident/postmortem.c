/*
 * postmortem.c: a blameless postmortem draft from what firebreak measured.
 *
 * Sections follow the usual template (summary, impact, timeline, detection,
 * response, trigger and root cause, what went well, what went badly, where
 * we got lucky, action items) plus the data impact with the journal export
 * to run. Facts are filled in; judgement is left as prompts for the people
 * writing it, marked "(to write)".
 */
#include <stdio.h>
#include <string.h>

#include "firebreak/buf.h"
#include "firebreak/postmortem.h"

static const char *s_(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));

    return s ? s : "";
}

static long long i_(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

static double f_(const json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

static void summary(const json_t *inc, struct fb_buf *b)
{
    const json_t *im = json_object_get(inc, "impact"), *d = json_object_get(inc, "durations");
    const char *svc = json_string_value(json_array_get(json_object_get(inc, "services"), 0));

    fb_buf_printf(b, "# Postmortem: %s %s\n\n", s_(inc, "id"), s_(inc, "title"));
    fb_buf_printf(b, "Severity %s, status %s. Blameless: this describes what happened and what "
                     "the system let happen, not who.\n\n## Summary\n\n",
                  s_(inc, "severity"), s_(inc, "status"));
    if (json_object_get(im, "release"))
        fb_buf_printf(b, "Release %s of %s answered errors to %lld requests for %.1f s before "
                         "it was contained by a rollback (%s). %lld users were affected.\n\n",
                      s_(im, "release"), svc ? svc : "?", i_(im, "requests_failed"),
                      f_(im, "duration_s"), s_(json_object_get(inc, "fixed_by"), "trigger"),
                      i_(im, "users_affected"));
    else
        fb_buf_puts(b, "(to write: what happened, in two sentences)\n\n");
    fb_buf_printf(b, "Time to detect %.1f s, to contain %.1f s, counted from the first second "
                     "in which the error rate rose (not from the declaration).\n\n",
                  f_(d, "time_to_detect_s"), f_(d, "time_to_contain_s"));
}

static void impact(const json_t *inc, struct fb_buf *b)
{
    const json_t *im = json_object_get(inc, "impact"), *t = json_object_get(inc, "times");
    const json_t *j = json_object_get(im, "journal");
    const char *svc = json_string_value(json_array_get(json_object_get(inc, "services"), 0));

    fb_buf_puts(b, "## Impact\n\n| measure | value |\n|---|---|\n");
    fb_buf_printf(b, "| requests failed | %lld |\n| requests served by the release | %lld |\n",
                  i_(im, "requests_failed"), i_(im, "requests_served"));
    fb_buf_printf(b, "| peak error rate | %.2f%% |\n| users affected | %lld |\n",
                  100 * f_(im, "peak_error_rate"), i_(im, "users_affected"));
    fb_buf_printf(b, "| write requests served | %lld |\n| impact start | %s |\n",
                  i_(im, "writes"), s_(t, "impact_start"));
    fb_buf_printf(b, "| contained | %s |\n| resolved | %s |\n\n", s_(t, "contained"),
                  s_(t, "resolved"));
    fb_buf_puts(b, "## Data impact\n\n");
    if (j)
        fb_buf_printf(b, "The journal holds %lld writes by %lld identities to %lld records "
                         "between %s and %s%s.\n\n",
                      i_(j, "writes"), i_(j, "identities"), i_(j, "entities"),
                      s_(j, "first"), s_(j, "last"),
                      i_(j, "dropped") ? " (records were dropped: the counts are a floor)" : "");
    else
        fb_buf_printf(b, "%lld write requests reached the release.\n\n", i_(im, "writes"));
    if (json_object_get(im, "release"))
        fb_buf_printf(b, "List them for checking and repair:\n\n    firebreak journal export %s "
                         "--release %s --since %s --format csv\n\n",
                      svc ? svc : "SERVICE", s_(im, "release"),
                      *s_(t, "impact_start") ? s_(t, "impact_start") : s_(t, "declared"));
}

/* A table cell: no line breaks, no column separators. */
static void cell(struct fb_buf *b, const char *s, size_t max)
{
    size_t i;

    for (i = 0; s[i] && i < max; i++) {
        char ch = s[i] == '\n' || s[i] == '\r' || s[i] == '\t' ? ' ' : s[i];

        if (ch == '|')
            fb_buf_puts(b, "\\|");
        else
            fb_buf_append(b, &ch, 1);
    }
}

static void timeline(const json_t *tl, struct fb_buf *b)
{
    size_t i;
    json_t *e;

    fb_buf_puts(b, "## Timeline\n\n| time (UTC) | T+ | event | by | details |\n"
                   "|---|---|---|---|---|\n");
    json_array_foreach(tl, i, e)
    {
        const json_t *d = json_object_get(e, "details");
        const char *what = s_(d, "summary");

        if (!*what)
            what = s_(d, "reason");
        if (!*what)
            what = s_(d, "text");
        fb_buf_printf(b, "| %s | %+.1f s | %s | %s | %s ", s_(e, "time"), f_(e, "t_plus_s"),
                      s_(e, "type"), s_(e, "actor"), s_(e, "release"));
        cell(b, what, 160);
        fb_buf_puts(b, " |\n");
    }
    fb_buf_puts(b, "\n");
}

static void cause(const json_t *inc, struct fb_buf *b)
{
    const json_t *c = json_object_get(inc, "caused_by"), *f = json_object_get(inc, "fixed_by");
    const json_t *ev = json_object_get(inc, "evidence");

    fb_buf_puts(b, "## Detection\n\n");
    if (f && json_is_object(f))
        fb_buf_printf(b, "Detected by firebreak's %s: %s\n\n", s_(f, "trigger"),
                      s_(f, "reason"));
    else
        fb_buf_puts(b, "(to write: how it was noticed)\n\n");
    fb_buf_puts(b, "## Response\n\n");
    fb_buf_printf(b, "Commander: %s. Comms: %s. Ops: %s. Scribe: %s. Updates published: %zu.\n\n",
                  *s_(json_object_get(inc, "roles"), "commander")
                      ? s_(json_object_get(inc, "roles"), "commander") : "(none)",
                  *s_(json_object_get(inc, "roles"), "comms")
                      ? s_(json_object_get(inc, "roles"), "comms") : "(none)",
                  *s_(json_object_get(inc, "roles"), "ops")
                      ? s_(json_object_get(inc, "roles"), "ops") : "(none)",
                  *s_(json_object_get(inc, "roles"), "scribe")
                      ? s_(json_object_get(inc, "roles"), "scribe") : "(none)",
                  json_array_size(json_object_get(inc, "updates")));
    fb_buf_puts(b, "## Trigger and root cause\n\n");
    if (c && json_is_object(c))
        fb_buf_printf(b, "Trigger: rollout %s of release %s of %s.\n\n", s_(c, "rollout"),
                      s_(c, "release"), s_(c, "service"));
    if (ev && json_is_object(ev))
        fb_buf_printf(b, "The judge's evidence: %s\n\n", s_(ev, "reason"));
    fb_buf_puts(b, "Root cause: (to write: why the release behaved this way, and why checks "
                   "before production did not catch it)\n\n");
}

static void lessons(const json_t *inc, struct fb_buf *b)
{
    const json_t *d = json_object_get(inc, "durations"), *a = json_object_get(inc, "actions");
    size_t i;
    json_t *x;

    fb_buf_puts(b, "## What went well\n\n");
    if (json_is_number(json_object_get(d, "time_to_contain_s")))
        fb_buf_printf(b, "- Containment took %.1f s from the first failing second, without "
                         "waiting for a person.\n",
                      f_(d, "time_to_contain_s"));
    fb_buf_puts(b, "- (to write)\n\n## What went badly\n\n- (to write)\n\n"
                   "## Where we got lucky\n\n- (to write)\n\n## Action items\n\n"
                   "| # | type | action | owner | status |\n|---|---|---|---|---|\n");
    json_array_foreach(a, i, x)
        fb_buf_printf(b, "| %lld | %s | %s | %s | %s |\n", i_(x, "id"), s_(x, "type"),
                      s_(x, "text"), *s_(x, "owner") ? s_(x, "owner") : "(unassigned)",
                      s_(x, "status"));
    if (!json_array_size(a))
        fb_buf_puts(b, "| | prevent | (to write) | | |\n| | detect | (to write) | | |\n");
    fb_buf_puts(b, "\n");
}

int postmortem_write(const json_t *inc, const json_t *tl, struct fb_buf *out)
{
    summary(inc, out);
    impact(inc, out);
    timeline(tl, out);
    cause(inc, out);
    lessons(inc, out);
    return out->data ? 0 : -1;
}

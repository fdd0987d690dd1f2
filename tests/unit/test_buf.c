/* test_buf.c: struct fb_buf keeps its maximum and never half-appends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "firebreak/buf.h"
#include "firebreak/err.h"

static void append_and_printf(void **state)
{
    struct fb_buf b;

    fb_buf_init(&b, 1024);
    assert_int_equal(fb_buf_puts(&b, "hello "), 0);
    assert_int_equal(fb_buf_printf(&b, "%s %d", "world", 42), 0);
    assert_string_equal(b.data, "hello world 42");
    assert_int_equal(b.len, 14);
    fb_buf_release(&b);
}

static void over_max_is_refused_and_unchanged(void **state)
{
    struct fb_buf b;

    fb_buf_init(&b, 8);
    assert_int_equal(fb_buf_puts(&b, "12345"), 0);
    assert_int_equal(fb_buf_puts(&b, "6789"), -FB_ETOOBIG);
    assert_string_equal(b.data, "12345");
    assert_int_equal(fb_buf_printf(&b, "%d", 1234), -FB_ETOOBIG);
    assert_int_equal(b.len, 5);
    assert_int_equal(fb_buf_puts(&b, "678"), 0);
    assert_string_equal(b.data, "12345678");
    fb_buf_release(&b);
}

static void consume_moves_the_rest_forward(void **state)
{
    struct fb_buf b;

    fb_buf_init(&b, 64);
    assert_int_equal(fb_buf_puts(&b, "abcdef"), 0);
    fb_buf_consume(&b, 2);
    assert_string_equal(b.data, "cdef");
    fb_buf_consume(&b, 10);
    assert_int_equal(b.len, 0);
    fb_buf_release(&b);
}

static void error_table_names_and_statuses(void **state)
{
    assert_string_equal(fb_err_name(-FB_EHDRTOOBIG), "headers_too_large");
    assert_int_equal(fb_err_status(-FB_EHDRTOOBIG), 431);
    assert_int_equal(fb_err_status(-FB_EVERSION), 505);
    assert_string_equal(fb_err_name(0), "ok");
    assert_string_equal(fb_err_name(-9999), "io");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(append_and_printf),
        cmocka_unit_test(over_max_is_refused_and_unchanged),
        cmocka_unit_test(consume_moves_the_rest_forward),
        cmocka_unit_test(error_table_names_and_statuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

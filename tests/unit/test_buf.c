/* Unit tests for buf.c. */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"

int
main(void)
{
	struct buf b;
	char *s;

	buf_init(&b);
	CHECK(buf_puts(&b, "a") == 0);
	CHECK(buf_printf(&b, "%d-%s", 42, "x") == 0);
	CHECK_STR(b.data, "a42-x");
	for (int i = 0; i < 1000; i++)
		CHECK(buf_append(&b, "0123456789", 10) == 0);
	CHECK(b.len == 5 + 10000);
	buf_fini(&b);
	CHECK(b.data == NULL && b.len == 0);

	CHECK(buf_put_html(&b, "<a href=\"x\">Tom & 'Jerry'</a>") == 0);
	CHECK_STR(b.data, "&lt;a href=&quot;x&quot;&gt;Tom &amp; "
	    "&#39;Jerry&#39;&lt;/a&gt;");
	s = buf_steal(&b);
	CHECK(b.data == NULL);
	free(s);
	return check_done("test_buf");
}

/* Unit tests for metrics.c: the Prometheus text format. */
#include <string.h>

#include "check.h"
#include "metrics.h"

int
main(void)
{
	static const double bounds[] = {0.001, 0.01, 0.1};
	struct metrics_hist h;
	metrics_counter c = 0;
	struct buf b;

	buf_init(&b);
	metrics_inc(&c);
	metrics_add(&c, 4);
	CHECK(metrics_get(&c) == 5);
	metrics_write_counter(&b, "tally_votes_total", "Votes.", "", 5);
	metrics_write_counter(&b, "tally_req_total", "Requests.",
	    "status=\"200\"", 7);
	metrics_write_counter(&b, "tally_req_total", NULL, "status=\"404\"", 1);
	CHECK(strstr(b.data, "# TYPE tally_votes_total counter\n"
	    "tally_votes_total 5\n") != NULL);
	CHECK(strstr(b.data, "tally_req_total{status=\"200\"} 7\n"
	    "tally_req_total{status=\"404\"} 1\n") != NULL);

	metrics_hist_init(&h, bounds, 3);
	metrics_hist_observe(&h, 0.0005);
	metrics_hist_observe(&h, 0.005);
	metrics_hist_observe(&h, 0.005);
	metrics_hist_observe(&h, 5);
	buf_fini(&b);
	metrics_write_hist(&b, "lat_seconds", "Latency.", &h);
	CHECK(strstr(b.data, "lat_seconds_bucket{le=\"0.001\"} 1\n") != NULL);
	CHECK(strstr(b.data, "lat_seconds_bucket{le=\"0.01\"} 3\n") != NULL);
	CHECK(strstr(b.data, "lat_seconds_bucket{le=\"0.1\"} 3\n") != NULL);
	CHECK(strstr(b.data, "lat_seconds_bucket{le=\"+Inf\"} 4\n") != NULL);
	CHECK(strstr(b.data, "lat_seconds_count 4\n") != NULL);
	CHECK(strstr(b.data, "lat_seconds_sum 5.0105") != NULL);
	buf_fini(&b);
	CHECK(metrics_now_us() > 0);
	return check_done("test_metrics");
}

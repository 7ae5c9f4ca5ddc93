/* test_store_stress.c - placeholder replaced below. */
#include "test.h"
static void nothing(void) {}
TEST_MAIN("store_stress", TEST_CASE(nothing))

/* bench_store.c - placeholder replaced below.
 * Nothing yet. */
int main(void);
int main(void) { return 0; }

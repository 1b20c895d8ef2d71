/* A perfectly good shared library that is not a shoal plugin: no entry point. */
int no_entry_point_answer(void) { return 42; }

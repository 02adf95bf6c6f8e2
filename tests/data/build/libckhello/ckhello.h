/* libckhello: a tiny library that ckpm's build tests compile, install and link against. */
#ifndef CKHELLO_H
#define CKHELLO_H
#define CKHELLO_VERSION "1.0"
const char *ckhello_greeting(void);
int ckhello_answer(void);
#endif

#include "ckhello.h"

const char *ckhello_greeting(void) { return "hello from libckhello"; }

int ckhello_answer(void) { return 42; }

#include <stdio.h>
#include "ckhello.h"

int main(void) {
    printf("%s %s answer=%d\n", ckhello_greeting(), CKHELLO_VERSION, ckhello_answer());
    return 0;
}

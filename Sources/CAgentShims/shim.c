#include "CAgentShims.h"
#include <malloc.h>
#include <string.h>
#include <sys/timex.h>

int cagent_clock_synchronized(void) {
    struct timex tx;
    memset(&tx, 0, sizeof(tx));
    int state = adjtimex(&tx);
    if (state < 0) {
        return -1;
    }
    return (state != TIME_ERROR && (tx.status & STA_UNSYNC) == 0) ? 1 : 0;
}

int cagent_malloc_set_arena_max(int count) {
    return mallopt(M_ARENA_MAX, count);
}

unsigned long cagent_malloc_free_bytes(void) {
    struct mallinfo2 info = mallinfo2();
    return (unsigned long)info.fordblks;
}

int cagent_malloc_trim(void) {
    return malloc_trim(0);
}

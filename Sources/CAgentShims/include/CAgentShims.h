#ifndef C_AGENT_SHIMS_H
#define C_AGENT_SHIMS_H

/// Whether the kernel clock is synchronised: 1 yes, 0 no, -1 unknown (adjtimex failed).
/// Glibc's Swift module map does not export <sys/timex.h>, hence this shim.
int cagent_clock_synchronized(void);

/// Caps glibc malloc's arenas at `count` (mallopt M_ARENA_MAX); 1 on success. Call before threads start.
int cagent_malloc_set_arena_max(int count);

/// Bytes held by glibc malloc's arenas but free (mallinfo2 fordblks): what a trim could give back at most.
unsigned long cagent_malloc_free_bytes(void);

/// Returns free memory at the top of every arena and whole free pages inside them to the kernel (malloc_trim(0));
/// 1 when something was released.
int cagent_malloc_trim(void);

#endif

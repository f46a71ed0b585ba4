#ifndef C_AGENT_SHIMS_H
#define C_AGENT_SHIMS_H

/// Whether the kernel clock is synchronised: 1 yes, 0 no, -1 unknown (adjtimex failed).
/// Glibc's Swift module map does not export <sys/timex.h>, hence this shim.
int cagent_clock_synchronized(void);

#endif

#ifndef C_NFTABLES_SHIM_H
#define C_NFTABLES_SHIM_H
#include <nftables/libnftables.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/netlink.h>

/// Moves the calling thread into the network namespace behind `fd` (an open /var/run/netns/NAME).
static inline int cnftables_enter_netns(int fd) { return setns(fd, CLONE_NEWNET); }

/// An anonymous in-memory file for one nft script, so errors carry line numbers (libnftables 1.0.6 prints
/// the wrong line for buffer input).
static inline int cnftables_memfd(const char *name) { return memfd_create(name, MFD_CLOEXEC); }
#endif

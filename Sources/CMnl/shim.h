#ifndef C_MNL_SHIM_H
#define C_MNL_SHIM_H
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/genetlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/ip_vs.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Macros Swift cannot import, as prefixed functions. */

/** MNL_SOCKET_BUFFER_SIZE: the receive buffer libmnl recommends (at least one page, at most 8 KiB). */
static inline size_t cmnl_socket_buffer_size(void) { return MNL_SOCKET_BUFFER_SIZE; }

/** MNL_ALIGN / NLMSG_ALIGN: netlink's 4-byte alignment. */
static inline size_t cmnl_align(size_t len) { return MNL_ALIGN(len); }

/** NLMSG_HDRLEN: the aligned size of struct nlmsghdr. */
static inline size_t cmnl_nlmsg_hdrlen(void) { return MNL_NLMSG_HDRLEN; }

/** NLA_TYPE_MASK: the attribute type without the nested / byte-order bits. */
static inline uint16_t cmnl_attr_type_mask(void) { return NLA_TYPE_MASK; }

/** setns(fd, CLONE_NEWNET) through syscall(2), which Swift cannot call (it is variadic). */
static inline int cmnl_setns_net(int fd) { return (int)syscall(SYS_setns, fd, 0x40000000 /* CLONE_NEWNET */); }

#endif

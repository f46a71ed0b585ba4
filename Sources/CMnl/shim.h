#ifndef C_MNL_SHIM_H
#define C_MNL_SHIM_H
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/genetlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/ip_vs.h>
#endif

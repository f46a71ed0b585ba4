#ifndef C_NETLINK_SHIM_H
#define C_NETLINK_SHIM_H
#include <netlink/netlink.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/family.h>
#endif

#ifndef C_NFTABLES_SHIM_H
#define C_NFTABLES_SHIM_H
#include <nftables/libnftables.h>
#endif

/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * virtio-net with no network behind it: frames the guest sends are taken and dropped, and
 * none ever arrives, so receive buffers stay with the device.
 */
#include "devices.h"
#include "virtio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NET_DEVICE_ID 0x1000
#define NET_TYPE      1
#define NET_CLASS     0x020000 /* network, Ethernet */

#define NET_F_MAC    5
#define NET_F_STATUS 16

#define S_LINK_UP 1

#define RXQ 0
#define TXQ 1

/* struct virtio_net_config: mac, status, max_virtqueue_pairs. */
#define CFG_MAC    0
#define CFG_STATUS 6
#define CFG_PAIRS  8
#define CFG_LEN    10

struct virtio_net {
	struct virtio_dev *vd;
};

static void net_queue(void *opaque, struct virtio_dev *vd, unsigned idx)
{
	(void)opaque;
	if (idx != TXQ)
		return;
	struct virtq_chain c;
	while (virtio_pop(vd, idx, &c) == 1)
		virtio_push(vd, idx, c.head, 0);
}

int virtio_net_new(struct vm *vm, unsigned slot, const uint8_t mac[6], struct virtio_net **out)
{
	/* QEMU's default address, so guests configured for it find the same. */
	static const uint8_t default_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
	if (!vm || !out)
		return -EINVAL;
	struct virtio_net *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	uint8_t cfg[CFG_LEN] = {0};
	uint16_t status = S_LINK_UP, pairs = 1;
	memcpy(cfg + CFG_MAC, mac ? mac : default_mac, 6);
	memcpy(cfg + CFG_STATUS, &status, 2);
	memcpy(cfg + CFG_PAIRS, &pairs, 2);
	struct virtio_dev_info info = {
	    .name = "virtio-net",
	    .device_id = NET_DEVICE_ID,
	    .type = NET_TYPE,
	    .class_code = NET_CLASS,
	    .features = (1ull << NET_F_MAC) | (1ull << NET_F_STATUS),
	    .nqueues = 2,
	    .config = cfg,
	    .config_len = sizeof(cfg),
	    .queue_notify = net_queue,
	    .opaque = n,
	};
	int err = virtio_pci_new(vm, slot, &info, &n->vd);
	if (err) {
		free(n);
		return err;
	}
	*out = n;
	return 0;
}

void virtio_net_free(void *dev)
{
	struct virtio_net *n = dev;
	if (!n)
		return;
	virtio_pci_free(n->vd);
	free(n);
}

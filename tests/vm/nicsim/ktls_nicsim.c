// SPDX-License-Identifier: GPL-2.0
/*
 * ktls_nicsim - a TLS-offload test NIC for the rig's guest kernels.
 *
 * Loading it creates two Ethernet devices joined like a veth pair:
 * whatever one transmits, the other receives.  ktsim0 advertises
 * tls-hw-tx-offload (NETIF_F_HW_TLS_TX, user-changeable with ethtool) and
 * implements tlsdev_ops for TX, so the kernel's device-offload core hands
 * it the TLS records of sockets routed through it, plaintext with room for
 * the tag.  It "encrypts in hardware" with the kernel's own software path
 * for that job, tls_encrypt_skb(), so its peer receives real TLS records.
 * ktsim1 offers no offload: it is the far end of the wire.
 *
 * What the device accepts (tls_dev_add): TX only; TLS 1.2 only; AES-GCM-128,
 * and AES-GCM-256 only while the parameter aes256 is set (default off), so
 * that a test can watch a connection the device refuses land on kernel
 * software.  The refusal is -EOPNOTSUPP, as drivers answer a cipher they
 * cannot do; the core then installs software crypto instead.  RX offload
 * is not offered: a device that decrypts must also track the TCP stream
 * and resync on loss (tls_dev_resync/RX), which a software device could
 * only pretend to do.
 *
 * Counters (ethtool -S, `ktlsctl nic`): contexts added, refused, deleted,
 * packets and bytes encrypted, encryption failures, and resync calls.
 *
 * Not a driver for anything real: no queues, no NAPI, no link state of its
 * own beyond up/down.  Everything it proves is about the kernel's offload
 * core and ktls, not about a NIC (kernel-notes/nic-offload.md).
 */
#include <linux/module.h>
#include <linux/netdevice.h>
#include <linux/etherdevice.h>
#include <linux/ethtool.h>
#include <linux/rtnetlink.h>
#include <net/tls.h>

static bool aes256;
module_param(aes256, bool, 0644);
MODULE_PARM_DESC(aes256, "also accept TLS 1.2 AES-GCM-256 contexts (default: AES-GCM-128 only)");

enum nicsim_stat {
	NS_CTX_ADD,
	NS_CTX_REFUSED,
	NS_CTX_DEL,
	NS_ENC_PACKETS,
	NS_ENC_BYTES,
	NS_ENC_ERRORS,
	NS_RESYNC,
	NS_NSTATS,
};

static const char nicsim_stat_names[NS_NSTATS][ETH_GSTRING_LEN] = {
	"tls_tx_ctx_add",
	"tls_tx_ctx_refused",
	"tls_tx_ctx_del",
	"tls_tx_encrypted_packets",
	"tls_tx_encrypted_bytes",
	"tls_tx_encrypt_errors",
	"tls_tx_resync",
};

struct nicsim_priv {
	struct net_device __rcu *peer;
	atomic64_t stat[NS_NSTATS];
	atomic64_t tx_packets, tx_bytes, tx_dropped;
	atomic64_t rx_packets, rx_bytes;
};

static struct net_device *nicsim_dev[2];

static void nicsim_count(struct net_device *dev, enum nicsim_stat s, u64 n)
{
	struct nicsim_priv *p = netdev_priv(dev);

	atomic64_add(n, &p->stat[s]);
}

/* ---- tlsdev_ops ---------------------------------------------------------------- */

static const char *nicsim_cipher_name(u16 cipher)
{
	switch (cipher) {
	case TLS_CIPHER_AES_GCM_128: return "AES-GCM-128";
	case TLS_CIPHER_AES_GCM_256: return "AES-GCM-256";
	case TLS_CIPHER_AES_CCM_128: return "AES-CCM-128";
	case TLS_CIPHER_CHACHA20_POLY1305: return "ChaCha20-Poly1305";
	default: return "unknown";
	}
}

static int nicsim_tls_dev_add(struct net_device *dev, struct sock *sk,
			      enum tls_offload_ctx_dir dir,
			      struct tls_crypto_info *ci, u32 start_sn)
{
	const char *why = NULL;

	if (dir != TLS_OFFLOAD_CTX_DIR_TX)
		why = "RX offload is not offered";
	else if (ci->version != TLS_1_2_VERSION)
		why = "only TLS 1.2 is offered";
	else if (ci->cipher_type != TLS_CIPHER_AES_GCM_128 &&
		 !(ci->cipher_type == TLS_CIPHER_AES_GCM_256 && READ_ONCE(aes256)))
		why = "cipher not offered";
	if (why) {
		nicsim_count(dev, NS_CTX_REFUSED, 1);
		netdev_info(dev, "refused a TLS %s context (version 0x%04x, %s): %s\n",
			    dir == TLS_OFFLOAD_CTX_DIR_TX ? "TX" : "RX", ci->version,
			    nicsim_cipher_name(ci->cipher_type), why);
		return -EOPNOTSUPP;
	}
	nicsim_count(dev, NS_CTX_ADD, 1);
	return 0;
}

static void nicsim_tls_dev_del(struct net_device *dev, struct tls_context *ctx,
			       enum tls_offload_ctx_dir dir)
{
	nicsim_count(dev, NS_CTX_DEL, 1);
}

/*
 * The core asks for a TX resync only after a driver requested one
 * (tls_offload_tx_resync_request); this device never loses track, since
 * tls_encrypt_skb() finds every record, retransmitted or not, by its TCP
 * sequence number.  Counted so that a test would notice a surprise.
 */
static int nicsim_tls_dev_resync(struct net_device *dev, struct sock *sk, u32 seq,
				 u8 *rcd_sn, enum tls_offload_ctx_dir dir)
{
	nicsim_count(dev, NS_RESYNC, 1);
	return 0;
}

static const struct tlsdev_ops nicsim_tlsdev_ops = {
	.tls_dev_add = nicsim_tls_dev_add,
	.tls_dev_del = nicsim_tls_dev_del,
	.tls_dev_resync = nicsim_tls_dev_resync,
};

/* ---- the wire ------------------------------------------------------------------- */

/* Is this skb's socket offloaded to this very device?  (One offloaded to
 * another device was already encrypted in software by the core's
 * validate hook, tls_validate_xmit_skb, before it reached us.) */
static bool nicsim_owns_record(const struct sk_buff *skb, struct net_device *dev)
{
	struct tls_context *ctx;

	if (!tls_is_skb_tx_device_offloaded(skb))
		return false;
	ctx = tls_get_ctx(skb->sk);
	return rcu_access_pointer(ctx->netdev) == dev;
}

static netdev_tx_t nicsim_xmit(struct sk_buff *skb, struct net_device *dev)
{
	struct nicsim_priv *p = netdev_priv(dev);
	struct net_device *peer;
	unsigned int len;

	if (nicsim_owns_record(skb, dev)) {
		unsigned int plain = skb->len;

		/* Consumes skb, returns the encrypted copy (or NULL). */
		skb = tls_encrypt_skb(skb);
		if (!skb) {
			nicsim_count(dev, NS_ENC_ERRORS, 1);
			atomic64_inc(&p->tx_dropped);
			return NETDEV_TX_OK;
		}
#ifdef CONFIG_SKB_DECRYPTED
		/* Inherited from the plaintext skb: on the wire it is ciphertext,
		 * and a peer with RX offload must not take it for decrypted. */
		skb->decrypted = 0;
#endif
		nicsim_count(dev, NS_ENC_PACKETS, 1);
		nicsim_count(dev, NS_ENC_BYTES, plain);
	}

	rcu_read_lock();
	peer = rcu_dereference(p->peer);
	len = skb->len;
	if (!peer || !(peer->flags & IFF_UP)) {
		kfree_skb(skb);
		atomic64_inc(&p->tx_dropped);
	} else if (dev_forward_skb(peer, skb) == NET_RX_SUCCESS) {
		struct nicsim_priv *pp = netdev_priv(peer);

		atomic64_inc(&p->tx_packets);
		atomic64_add(len, &p->tx_bytes);
		atomic64_inc(&pp->rx_packets);
		atomic64_add(len, &pp->rx_bytes);
	} else {
		atomic64_inc(&p->tx_dropped);
	}
	rcu_read_unlock();
	return NETDEV_TX_OK;
}

static void nicsim_get_stats64(struct net_device *dev, struct rtnl_link_stats64 *s)
{
	struct nicsim_priv *p = netdev_priv(dev);

	s->tx_packets = atomic64_read(&p->tx_packets);
	s->tx_bytes = atomic64_read(&p->tx_bytes);
	s->tx_dropped = atomic64_read(&p->tx_dropped);
	s->rx_packets = atomic64_read(&p->rx_packets);
	s->rx_bytes = atomic64_read(&p->rx_bytes);
}

static int nicsim_open(struct net_device *dev)
{
	netif_carrier_on(dev);
	return 0;
}

static int nicsim_stop(struct net_device *dev)
{
	netif_carrier_off(dev);
	return 0;
}

static const struct net_device_ops nicsim_netdev_ops = {
	.ndo_open = nicsim_open,
	.ndo_stop = nicsim_stop,
	.ndo_start_xmit = nicsim_xmit,
	.ndo_get_stats64 = nicsim_get_stats64,
	.ndo_set_mac_address = eth_mac_addr,
};

/* ---- ethtool -------------------------------------------------------------------- */

static void nicsim_get_drvinfo(struct net_device *dev, struct ethtool_drvinfo *info)
{
	strscpy(info->driver, KBUILD_MODNAME, sizeof(info->driver));
}

static int nicsim_get_sset_count(struct net_device *dev, int sset)
{
	return sset == ETH_SS_STATS ? NS_NSTATS : -EOPNOTSUPP;
}

static void nicsim_get_strings(struct net_device *dev, u32 sset, u8 *buf)
{
	if (sset == ETH_SS_STATS)
		memcpy(buf, nicsim_stat_names, sizeof(nicsim_stat_names));
}

static void nicsim_get_ethtool_stats(struct net_device *dev, struct ethtool_stats *st, u64 *v)
{
	struct nicsim_priv *p = netdev_priv(dev);

	for (int i = 0; i < NS_NSTATS; i++)
		v[i] = atomic64_read(&p->stat[i]);
}

static const struct ethtool_ops nicsim_ethtool_ops = {
	.get_drvinfo = nicsim_get_drvinfo,
	.get_link = ethtool_op_get_link,
	.get_sset_count = nicsim_get_sset_count,
	.get_strings = nicsim_get_strings,
	.get_ethtool_stats = nicsim_get_ethtool_stats,
};

/* ---- the pair ------------------------------------------------------------------- */

/* veth's software offloads, so the stack hands over whole TSO skbs (the
 * TLS core encrypts those too); TLS TX only on the offloading side. */
#define NICSIM_FEATURES (NETIF_F_SG | NETIF_F_HW_CSUM | NETIF_F_RXCSUM | \
			 NETIF_F_HIGHDMA | NETIF_F_GSO_SOFTWARE)

static void nicsim_setup(struct net_device *dev)
{
	ether_setup(dev);
	dev->netdev_ops = &nicsim_netdev_ops;
	dev->ethtool_ops = &nicsim_ethtool_ops;
	dev->priv_flags |= IFF_NO_QUEUE;
	dev->features = NICSIM_FEATURES;
	dev->hw_features = NICSIM_FEATURES;
	dev->vlan_features = NICSIM_FEATURES;
	dev->max_mtu = ETH_MAX_MTU;
	eth_hw_addr_random(dev);
}

static struct net_device *nicsim_create(const char *name, bool tls_tx)
{
	struct net_device *dev;

	dev = alloc_netdev(sizeof(struct nicsim_priv), name, NET_NAME_USER, nicsim_setup);
	if (!dev)
		return NULL;
	if (tls_tx) {
		dev->tlsdev_ops = &nicsim_tlsdev_ops;
		dev->hw_features |= NETIF_F_HW_TLS_TX;
		dev->features |= NETIF_F_HW_TLS_TX;
	}
	return dev;
}

static int __init nicsim_init(void)
{
	struct nicsim_priv *p0, *p1;
	int err;

	nicsim_dev[0] = nicsim_create("ktsim0", true);
	nicsim_dev[1] = nicsim_create("ktsim1", false);
	if (!nicsim_dev[0] || !nicsim_dev[1]) {
		err = -ENOMEM;
		goto free;
	}
	p0 = netdev_priv(nicsim_dev[0]);
	p1 = netdev_priv(nicsim_dev[1]);
	RCU_INIT_POINTER(p0->peer, nicsim_dev[1]);
	RCU_INIT_POINTER(p1->peer, nicsim_dev[0]);

	err = register_netdev(nicsim_dev[0]);
	if (err)
		goto free;
	err = register_netdev(nicsim_dev[1]);
	if (err) {
		unregister_netdev(nicsim_dev[0]);
		goto free;
	}
	netif_carrier_off(nicsim_dev[0]);
	netif_carrier_off(nicsim_dev[1]);
	return 0;
free:
	/* free_netdev(NULL) is not allowed */
	if (nicsim_dev[0])
		free_netdev(nicsim_dev[0]);
	if (nicsim_dev[1])
		free_netdev(nicsim_dev[1]);
	return err;
}

static void __exit nicsim_exit(void)
{
	LIST_HEAD(gone);

	rtnl_lock();
	unregister_netdevice_queue(nicsim_dev[0], &gone);
	unregister_netdevice_queue(nicsim_dev[1], &gone);
	unregister_netdevice_many(&gone);
	rtnl_unlock();
	free_netdev(nicsim_dev[0]);
	free_netdev(nicsim_dev[1]);
}

module_init(nicsim_init);
module_exit(nicsim_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("TLS TX offload test NIC for the ktls rig (a veth-like pair)");

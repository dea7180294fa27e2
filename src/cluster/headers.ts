// Headers on requests from one node of a cluster to another.

/** The cluster's key (kept in Redis, so whoever reaches Redis is trusted). */
export const CLUSTER_KEY_HEADER = "x-mixroom-cluster-key";
/** The client's address as the entry node saw it (trusted only with the key). */
export const FORWARDED_FOR_HEADER = "x-mixroom-forwarded-for";

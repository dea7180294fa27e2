// SRTP and SRTCP packet protection for werift's sessions, in C on Node's own OpenSSL.
//
// Why: werift protects every packet in JavaScript with a fresh OpenSSL cipher (and, for
// AES-CM, a fresh HMAC with its key schedule) per packet, a BigInt, several Buffer.concat and a
// full RTP header parse before the payload parse that follows. At N = 9 that was 12% of the
// server's Node process (perf, on-CPU). Here each session keeps its keyed contexts and a packet
// costs one IV reset, the cipher pass and one output buffer.
//
// Scope: the two profiles werift negotiates, AEAD_AES_128_GCM (RFC 7714) and
// AES_CM_128_HMAC_SHA1_80 (RFC 3711), byte for byte as werift's JavaScript does them (the tests
// cross-check both ways). Roll-over counters and SRTCP indexes stay werift's: the caller passes
// them in. Everything runs on the JS thread, as werift's did: no locking.
#define NAPI_VERSION 8
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <node_api.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { PROFILE_AES_CM_SHA1_80 = 1, PROFILE_AEAD_AES_128_GCM = 7 };
enum { CM_TAG = 10, GCM_TAG = 16, SRTCP_INDEX = 4, RTP_MIN = 12, RTCP_MIN = 8, MAX_PACKET = 65536 };

// One direction's keys of one session (werift makes a context per direction).
typedef struct {
  int profile;
  uint8_t rtp_salt[14];
  uint8_t rtcp_salt[14];
  EVP_CIPHER_CTX *rtp_enc, *rtp_dec, *rtcp_enc, *rtcp_dec;
  HMAC_CTX *rtp_auth, *rtcp_auth; // AES-CM only
} Session;

static void session_free(Session *s) {
  if (!s) return;
  EVP_CIPHER_CTX_free(s->rtp_enc);
  EVP_CIPHER_CTX_free(s->rtp_dec);
  EVP_CIPHER_CTX_free(s->rtcp_enc);
  EVP_CIPHER_CTX_free(s->rtcp_dec);
  HMAC_CTX_free(s->rtp_auth);
  HMAC_CTX_free(s->rtcp_auth);
  free(s);
}

static void finalize_session(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  session_free((Session *)data);
}

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static int keyed(EVP_CIPHER_CTX **ctx, const EVP_CIPHER *cipher, const uint8_t *key, int enc) {
  *ctx = EVP_CIPHER_CTX_new();
  return *ctx && EVP_CipherInit_ex(*ctx, cipher, NULL, key, NULL, enc) == 1;
}

// --- argument helpers -------------------------------------------------------------------------

#define CHECK(env, call)                                                                          \
  do {                                                                                            \
    if ((call) != napi_ok) {                                                                      \
      napi_throw_error((env), "ERR_SRTP_NAPI", #call " failed");                                  \
      return NULL;                                                                                \
    }                                                                                             \
  } while (0)

static int get_buffer(napi_env env, napi_value v, const uint8_t **data, size_t *len) {
  bool is;
  if (napi_is_buffer(env, v, &is) != napi_ok || !is) return 0;
  void *p;
  if (napi_get_buffer_info(env, v, &p, len) != napi_ok) return 0;
  *data = (const uint8_t *)p;
  return 1;
}

static int get_u32(napi_env env, napi_value v, uint32_t *out) {
  return napi_get_value_uint32(env, v, out) == napi_ok;
}

static Session *get_session(napi_env env, napi_value v) {
  void *data = NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok) return NULL;
  return (Session *)data;
}

// The session's tag length: 16 for GCM, 10 for AES-CM with HMAC-SHA1-80.
static size_t tag_length(const Session *s) {
  return s->profile == PROFILE_AEAD_AES_128_GCM ? GCM_TAG : CM_TAG;
}

static napi_value bool_value(napi_env env, int b) {
  napi_value v;
  napi_get_boolean(env, b != 0, &v);
  return v;
}

// Reads (session, out, packet[, number]) for the unprotect/protect calls below.
static int packet_args(napi_env env, napi_callback_info info, size_t want, Session **s, uint8_t **out, size_t *outl,
                       const uint8_t **in, size_t *len, uint32_t *num) {
  size_t argc = 4;
  napi_value argv[4];
  const uint8_t *o;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != want) return 0;
  *s = get_session(env, argv[0]);
  if (!*s || !get_buffer(env, argv[1], &o, outl) || !get_buffer(env, argv[2], in, len)) return 0;
  if (want == 4 && !get_u32(env, argv[3], num)) return 0;
  *out = (uint8_t *)o;
  return *len <= MAX_PACKET;
}

// --- session ----------------------------------------------------------------------------------

// create(profile, rtpKey, rtpSalt, rtcpKey, rtcpSalt, rtpAuthKey, rtcpAuthKey): the session keys
// werift derived (its Context fields); the auth keys are ignored for GCM.
static napi_value create(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t profile;
  const uint8_t *k[6] = {0};
  size_t kl[6] = {0};
  if (argc < 5 || !get_u32(env, argv[0], &profile) ||
      (profile != PROFILE_AES_CM_SHA1_80 && profile != PROFILE_AEAD_AES_128_GCM)) {
    napi_throw_type_error(env, "ERR_SRTP_ARG", "unsupported SRTP profile");
    return NULL;
  }
  size_t need = profile == PROFILE_AES_CM_SHA1_80 ? 7 : 5;
  for (size_t i = 1; i < need; i++) {
    if (argc <= i || !get_buffer(env, argv[i], &k[i - 1], &kl[i - 1])) {
      napi_throw_type_error(env, "ERR_SRTP_ARG", "session keys must be Buffers");
      return NULL;
    }
  }
  size_t salt_len = profile == PROFILE_AES_CM_SHA1_80 ? 14 : 12;
  if (kl[0] != 16 || kl[2] != 16 || kl[1] < salt_len || kl[3] < salt_len) {
    napi_throw_range_error(env, "ERR_SRTP_ARG", "bad session key or salt length");
    return NULL;
  }
  Session *s = calloc(1, sizeof(Session));
  if (!s) {
    napi_throw_error(env, "ERR_SRTP_MEMORY", "out of memory");
    return NULL;
  }
  s->profile = (int)profile;
  memcpy(s->rtp_salt, k[1], salt_len);
  memcpy(s->rtcp_salt, k[3], salt_len);
  int ok;
  if (profile == PROFILE_AEAD_AES_128_GCM) {
    const EVP_CIPHER *c = EVP_aes_128_gcm();
    ok = keyed(&s->rtp_enc, c, k[0], 1) && keyed(&s->rtp_dec, c, k[0], 0) && keyed(&s->rtcp_enc, c, k[2], 1) &&
         keyed(&s->rtcp_dec, c, k[2], 0);
  } else {
    // CTR is its own inverse: one context per key serves both directions.
    const EVP_CIPHER *c = EVP_aes_128_ctr();
    ok = keyed(&s->rtp_enc, c, k[0], 1) && keyed(&s->rtcp_enc, c, k[2], 1);
    s->rtp_auth = HMAC_CTX_new();
    s->rtcp_auth = HMAC_CTX_new();
    ok = ok && s->rtp_auth && s->rtcp_auth && HMAC_Init_ex(s->rtp_auth, k[4], (int)kl[4], EVP_sha1(), NULL) == 1 &&
         HMAC_Init_ex(s->rtcp_auth, k[5], (int)kl[5], EVP_sha1(), NULL) == 1;
  }
  if (!ok) {
    session_free(s);
    napi_throw_error(env, "ERR_SRTP_OPENSSL", "could not set up the SRTP ciphers");
    return NULL;
  }
  napi_value ext;
  if (napi_create_external(env, s, finalize_session, NULL, &ext) != napi_ok) {
    session_free(s);
    napi_throw_error(env, "ERR_SRTP_NAPI", "napi_create_external failed");
    return NULL;
  }
  return ext;
}

// --- the ciphers ------------------------------------------------------------------------------

// RFC 3711 4.1.1: IV = (salt << 16) XOR (ssrc << 64) XOR (index << 16), 16 bytes.
static void cm_iv(uint8_t iv[16], const uint8_t salt[14], uint32_t ssrc, uint32_t roc, uint32_t seq) {
  memset(iv, 0, 16);
  put32(iv + 4, ssrc);
  put32(iv + 8, roc);
  iv[12] = (uint8_t)(seq >> 8);
  iv[13] = (uint8_t)seq;
  for (int i = 0; i < 14; i++) iv[i] ^= salt[i];
}

// RFC 7714 8.1 / 9.1: 12 bytes, 0(2) ssrc(4) roc(4) seq(2), or 0(2) ssrc(4) 0(2) index(4), XOR salt.
static void gcm_iv(uint8_t iv[12], const uint8_t salt[12], uint32_t ssrc, uint32_t hi, uint32_t lo, int rtcp) {
  memset(iv, 0, 12);
  put32(iv + 2, ssrc);
  if (rtcp) {
    put32(iv + 8, lo);
  } else {
    put32(iv + 6, hi);
    iv[10] = (uint8_t)(lo >> 8);
    iv[11] = (uint8_t)lo;
  }
  for (int i = 0; i < 12; i++) iv[i] ^= salt[i];
}

static int ctr_xor(EVP_CIPHER_CTX *ctx, const uint8_t iv[16], const uint8_t *in, uint8_t *out, size_t len) {
  int n = 0;
  if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, -1) != 1) return 0;
  return len == 0 || EVP_CipherUpdate(ctx, out, &n, in, (int)len) == 1;
}

// HMAC-SHA1 over a, b (either may be empty), truncated to 10 bytes.
static int cm_tag(HMAC_CTX *h, const uint8_t *a, size_t al, const uint8_t *b, size_t bl, uint8_t tag[CM_TAG]) {
  uint8_t md[EVP_MAX_MD_SIZE];
  unsigned int mdl = 0;
  if (HMAC_Init_ex(h, NULL, 0, NULL, NULL) != 1) return 0;
  if (al && HMAC_Update(h, a, al) != 1) return 0;
  if (bl && HMAC_Update(h, b, bl) != 1) return 0;
  if (HMAC_Final(h, md, &mdl) != 1 || mdl < CM_TAG) return 0;
  memcpy(tag, md, CM_TAG);
  return 1;
}

// AES-GCM over `in` with `aad`; enc: appends the tag to out; dec: checks `tag`. 1 when it holds.
static int gcm(EVP_CIPHER_CTX *ctx, int enc, const uint8_t iv[12], const uint8_t *aad, size_t aadl, const uint8_t *in,
               size_t len, uint8_t *out, uint8_t *tag) {
  int n = 0;
  if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, enc) != 1) return 0;
  if (aadl && EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aadl) != 1) return 0;
  if (len && EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1) return 0;
  if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GCM_TAG, tag) != 1) return 0;
  if (EVP_CipherFinal_ex(ctx, out + len, &n) != 1) return 0;
  return enc ? EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG, tag) == 1 : 1;
}

/** Where an RTP packet's payload starts (fixed header, CSRCs, extension), or 0 if it is not one. */
static size_t rtp_payload_offset(const uint8_t *p, size_t len) {
  if (len < RTP_MIN || (p[0] >> 6) != 2) return 0;
  size_t off = RTP_MIN + 4u * (p[0] & 0x0f);
  if (p[0] & 0x10) {
    if (off + 4 > len) return 0;
    off += 4 + 4u * (((size_t)p[off + 2] << 8) | p[off + 3]);
  }
  return off <= len ? off : 0;
}

// protectRtp(session, out, header, payload, roc): writes header (serialized) + encrypted payload +
// tag into `out`, which the caller sizes exactly (JavaScript's pooled allocation is cheaper than a
// buffer made here).
static napi_value protect_rtp(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Session *s = argc == 5 ? get_session(env, argv[0]) : NULL;
  const uint8_t *hdr, *pl, *o;
  size_t hl, pll, ol;
  uint32_t roc;
  int gcm_profile = s && s->profile == PROFILE_AEAD_AES_128_GCM;
  if (!s || !get_buffer(env, argv[1], &o, &ol) || !get_buffer(env, argv[2], &hdr, &hl) || !get_buffer(env, argv[3], &pl, &pll) ||
      !get_u32(env, argv[4], &roc) || hl < RTP_MIN || hl + pll > MAX_PACKET || ol != hl + pll + (gcm_profile ? GCM_TAG : CM_TAG)) {
    napi_throw_type_error(env, "ERR_SRTP_ARG", "protectRtp(session, out, header, payload, roc)");
    return NULL;
  }
  uint32_t ssrc = get32(hdr + 8), seq = ((uint32_t)hdr[2] << 8) | hdr[3];
  uint8_t *out = (uint8_t *)o;
  memcpy(out, hdr, hl);
  int ok;
  if (gcm_profile) {
    uint8_t iv[12];
    gcm_iv(iv, s->rtp_salt, ssrc, roc, seq, 0);
    ok = gcm(s->rtp_enc, 1, iv, hdr, hl, pl, pll, out + hl, out + hl + pll);
  } else {
    uint8_t iv[16], rocb[4];
    cm_iv(iv, s->rtp_salt, ssrc, roc, seq);
    put32(rocb, roc);
    ok = ctr_xor(s->rtp_enc, iv, pl, out + hl, pll) && cm_tag(s->rtp_auth, out, hl + pll, rocb, 4, out + hl + pll);
  }
  if (!ok) {
    napi_throw_error(env, "ERR_SRTP_OPENSSL", "SRTP encryption failed");
    return NULL;
  }
  return bool_value(env, 1);
}

// unprotectRtp(session, out, packet, roc): writes the RTP packet into `out` (sized packet length
// minus the tag) and answers true, or false when the packet does not authenticate, is not
// well-formed RTP, or its padding is impossible.
static napi_value unprotect_rtp(napi_env env, napi_callback_info info) {
  Session *s;
  uint8_t *out;
  const uint8_t *in;
  size_t outl, len;
  uint32_t roc;
  if (!packet_args(env, info, 4, &s, &out, &outl, &in, &len, &roc)) {
    napi_throw_type_error(env, "ERR_SRTP_ARG", "unprotectRtp(session, out, packet, roc)");
    return NULL;
  }
  size_t tagl = tag_length(s);
  if (len < RTP_MIN + tagl) return bool_value(env, 0);
  size_t body = len - tagl;
  if (outl != body) {
    napi_throw_range_error(env, "ERR_SRTP_ARG", "unprotectRtp: out must be the packet's length less its tag");
    return NULL;
  }
  size_t off = rtp_payload_offset(in, body);
  if (!off) return bool_value(env, 0);
  uint32_t ssrc = get32(in + 8), seq = ((uint32_t)in[2] << 8) | in[3];
  int ok;
  if (tagl == GCM_TAG) {
    uint8_t iv[12], tag[GCM_TAG];
    memcpy(tag, in + body, GCM_TAG);
    gcm_iv(iv, s->rtp_salt, ssrc, roc, seq, 0);
    ok = gcm(s->rtp_dec, 0, iv, in, off, in + off, body - off, out + off, tag);
  } else {
    uint8_t iv[16], rocb[4], tag[CM_TAG];
    put32(rocb, roc);
    // Authenticate first (RFC 3711 3.3): a forged packet is never decrypted.
    ok = cm_tag(s->rtp_auth, in, body, rocb, 4, tag) && CRYPTO_memcmp(tag, in + body, CM_TAG) == 0;
    if (ok) {
      cm_iv(iv, s->rtp_salt, ssrc, roc, seq);
      ok = ctr_xor(s->rtp_enc, iv, in + off, out + off, body - off);
    }
  }
  if (!ok) return bool_value(env, 0);
  memcpy(out, in, off);
  // Padding (P bit): the count in the last byte must lie inside the payload.
  if ((in[0] & 0x20) && (body <= off || out[body - 1] == 0 || out[body - 1] > body - off)) return bool_value(env, 0);
  return bool_value(env, 1);
}

// protectRtcp(session, out, packet, index): writes SRTCP (E flag set, the index appended) into
// `out`, sized packet + tag + 4.
static napi_value protect_rtcp(napi_env env, napi_callback_info info) {
  Session *s;
  uint8_t *out;
  const uint8_t *in;
  size_t outl, len;
  uint32_t index;
  if (!packet_args(env, info, 4, &s, &out, &outl, &in, &len, &index) || len < RTCP_MIN ||
      outl != len + tag_length(s) + SRTCP_INDEX) {
    napi_throw_type_error(env, "ERR_SRTP_ARG", "protectRtcp(session, out, packet, index)");
    return NULL;
  }
  index &= 0x7fffffffu;
  uint32_t ssrc = get32(in + 4);
  memcpy(out, in, RTCP_MIN);
  int ok;
  if (tag_length(s) == GCM_TAG) {
    // Layout: header(8) | ciphertext | tag(16) | E+index(4); AAD = header(8) | E+index(4).
    uint8_t iv[12], aad[12];
    memcpy(aad, in, RTCP_MIN);
    put32(aad + 8, index | 0x80000000u);
    gcm_iv(iv, s->rtcp_salt, ssrc, 0, index, 1);
    ok = gcm(s->rtcp_enc, 1, iv, aad, sizeof aad, in + RTCP_MIN, len - RTCP_MIN, out + RTCP_MIN, out + len);
    put32(out + len + GCM_TAG, index | 0x80000000u);
  } else {
    // Layout: header(8) | ciphertext | E+index(4) | tag(10), the tag over all before it.
    uint8_t iv[16];
    cm_iv(iv, s->rtcp_salt, ssrc, index >> 16, index & 0xffff);
    ok = ctr_xor(s->rtcp_enc, iv, in + RTCP_MIN, out + RTCP_MIN, len - RTCP_MIN);
    put32(out + len, index | 0x80000000u);
    ok = ok && cm_tag(s->rtcp_auth, out, len + SRTCP_INDEX, NULL, 0, out + len + SRTCP_INDEX);
  }
  if (!ok) {
    napi_throw_error(env, "ERR_SRTP_OPENSSL", "SRTCP encryption failed");
    return NULL;
  }
  return bool_value(env, 1);
}

// unprotectRtcp(session, out, packet): writes the RTCP compound packet into `out` (sized packet
// less tag and index) and answers true, or false when it does not authenticate.
static napi_value unprotect_rtcp(napi_env env, napi_callback_info info) {
  Session *s;
  uint8_t *out;
  const uint8_t *in;
  size_t outl, len;
  if (!packet_args(env, info, 3, &s, &out, &outl, &in, &len, NULL)) {
    napi_throw_type_error(env, "ERR_SRTP_ARG", "unprotectRtcp(session, out, packet)");
    return NULL;
  }
  size_t tagl = tag_length(s);
  if (len < RTCP_MIN + tagl + SRTCP_INDEX || (in[0] >> 6) != 2) return bool_value(env, 0);
  if (outl != len - tagl - SRTCP_INDEX) {
    napi_throw_range_error(env, "ERR_SRTP_ARG", "unprotectRtcp: out must be the packet's length less tag and index");
    return NULL;
  }
  uint32_t ssrc = get32(in + 4);
  int ok;
  if (tagl == GCM_TAG) {
    size_t index_at = len - SRTCP_INDEX, tag_at = index_at - GCM_TAG;
    uint32_t e_index = get32(in + index_at), index = e_index & 0x7fffffffu;
    uint8_t iv[12], tag[GCM_TAG];
    memcpy(tag, in + tag_at, GCM_TAG);
    gcm_iv(iv, s->rtcp_salt, ssrc, 0, index, 1);
    if (e_index >> 31) {
      uint8_t aad[12];
      memcpy(aad, in, RTCP_MIN);
      memcpy(aad + 8, in + index_at, SRTCP_INDEX);
      memcpy(out, in, RTCP_MIN);
      ok = gcm(s->rtcp_dec, 0, iv, aad, sizeof aad, in + RTCP_MIN, tag_at - RTCP_MIN, out + RTCP_MIN, tag);
    } else {
      // Authenticated only: the whole packet and the index are the AAD, as one run.
      uint8_t *aad = malloc(tag_at + SRTCP_INDEX);
      uint8_t scratch[16];
      if (!aad) return bool_value(env, 0);
      memcpy(aad, in, tag_at);
      memcpy(aad + tag_at, in + index_at, SRTCP_INDEX);
      ok = gcm(s->rtcp_dec, 0, iv, aad, tag_at + SRTCP_INDEX, NULL, 0, scratch, tag);
      free(aad);
      if (ok) memcpy(out, in, tag_at);
    }
  } else {
    size_t tag_at = len - CM_TAG, index_at = tag_at - SRTCP_INDEX;
    uint8_t tag[CM_TAG];
    ok = cm_tag(s->rtcp_auth, in, tag_at, NULL, 0, tag) && CRYPTO_memcmp(tag, in + tag_at, CM_TAG) == 0;
    if (ok) {
      uint32_t e_index = get32(in + index_at), index = e_index & 0x7fffffffu;
      if (e_index >> 31) {
        uint8_t iv[16];
        memcpy(out, in, RTCP_MIN);
        cm_iv(iv, s->rtcp_salt, ssrc, index >> 16, index & 0xffff);
        ok = ctr_xor(s->rtcp_enc, iv, in + RTCP_MIN, out + RTCP_MIN, index_at - RTCP_MIN);
      } else {
        memcpy(out, in, index_at);
      }
    }
  }
  return bool_value(env, ok);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"create", NULL, create, NULL, NULL, NULL, napi_enumerable, NULL},
    {"protectRtp", NULL, protect_rtp, NULL, NULL, NULL, napi_enumerable, NULL},
    {"unprotectRtp", NULL, unprotect_rtp, NULL, NULL, NULL, napi_enumerable, NULL},
    {"protectRtcp", NULL, protect_rtcp, NULL, NULL, NULL, napi_enumerable, NULL},
    {"unprotectRtcp", NULL, unprotect_rtcp, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

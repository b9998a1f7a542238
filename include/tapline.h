/*
 * tapline.h — the tapline spool record format.
 *
 * libtapline.so (the LD_PRELOAD library) appends records to spool files; the
 * `tapline` binary (Lambda extension and CLI) reads them. This header is the one
 * contract between the two halves, for writers and readers in other languages.
 * The Rust definitions live in record/src/ (crate tapline-record); the test
 * extension/tests/header_matches.rs fails when this file and they disagree.
 *
 * ---------------------------------------------------------------------------
 * Files
 * ---------------------------------------------------------------------------
 * Spool directory: $TAPLINE_SPOOL_DIR (default /tmp/tapline), mode 0700. The
 * environment variables both halves read, and their defaults, are defined once
 * in record/src/settings.rs.
 * Each writing process appends to its own files, mode 0600, created with
 * O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC:
 *
 *     <pid>-<seq>.tls         shared segments (the default; see "Segments")
 *     <pid>-<seq>.tlr         record files (the fallback, TAPLINE_SPOOL_MODE=file)
 *
 * seq = 0, 1, 2 ... per process. A record file is a sequence of records, each
 * appended with a single write(v) on an O_APPEND descriptor, so records of
 * different threads never interleave. A write that fails part-way (disk full)
 * leaves a torn record; the reader skips it and resynchronises on the next
 * magic. A process that was forked opens files under its own pid.
 *
 * ---------------------------------------------------------------------------
 * Segments
 * ---------------------------------------------------------------------------
 * A segment is a file created at its full size (TAPLINE_SEGMENT_BYTES, 4 MiB by
 * default, blocks allocated), mapped MAP_SHARED by every process that writes to
 * it. The first 4096 bytes are struct tl_segment_header; records follow from
 * offset TL_SEG_DATA_START, back to back, each 8-aligned, up to `reserve` (or
 * `data_end` once the segment is full). Fields marked "atomic" are only ever
 * accessed with atomic operations.
 *
 * Appending a record of `len` bytes (len = its padded length):
 *   1. off = atomic_fetch_add(&hdr->reserve, len)             (relaxed)
 *   2. if off + len > hdr->size: the record does not fit. If off <= size, this
 *      was the one reservation that crossed the end: store data_end = off
 *      (release), then state = TL_SEG_FULL (release). Move to another segment.
 *   3. store the record's version and type (bytes 4..8), then `length`
 *      (atomic, relaxed), then `pid` (atomic, release): a reader that meets the
 *      record before it is committed learns how long it is and whose it is.
 *   4. copy the rest of the header (CRC included), the payload and the padding.
 *      (Large payloads may be copied with non-temporal stores, as libtapline
 *      does; those are weakly ordered, so issue a store fence, e.g. _mm_sfence(),
 *      before step 5.)
 *   5. atomic_store(&rec->magic, TL_MAGIC, release): the commit.
 * No lock and no system call. A reader takes a record only once its magic is
 * set and its CRC checks. At an uncommitted record (magic 0) it waits while
 * process `pid` lives and skips `length` bytes once it is gone (a writer
 * killed between 1 and 5 leaves such a hole); records behind a hole may be
 * read before it, so a record committed late is still read, once. If `pid` is
 * still 0 (the writer stopped right after step 1), the reader waits while any
 * process in `writers` lives, then resynchronises on the next 8-aligned
 * committed record or named reservation.
 *
 * Writers: a process registers its pid in a free `writers` slot (compare-and-
 * swap from 0) before it writes; a child forked while its parent held a segment
 * registers itself in the fork handler and goes on writing to it (its records
 * carry its own pid), then claims segments of its own. A process clears its slot
 * when it is done with a full segment. A segment is finished once it is full (or
 * no registered writer lives) and everything up to its end was read.
 *
 * Reuse in place (epochs): the process that claimed a segment is its `keeper`
 * and may keep it mapped after it is full. A reader that finished a full epoch
 * whose keeper lives hands it back instead of deleting it: it writes zeros over
 * [data_start, data_end), then stores consumed = epoch. The keeper, seeing
 * consumed == epoch (acquire), resets reserve = data_start, data_end = 0,
 * writers = {itself}, state = TL_SEG_CLAIMED, then stores epoch + 1 (release)
 * and appends as before: no system call, no page fault. A reader that handed
 * an epoch back waits for the epoch to change and then reads the header again
 * before trusting it (one snapshot may mix fields from before and after the
 * reset), and reads from data_start. A keeper that lets a segment go stores
 * keeper = 0 and unmaps it; a reader deletes a finished segment whose keeper
 * is 0 or no longer lives.
 *
 * Segments are made ahead of need by the reader (tapline run, the Lambda
 * extension), fully written with zeros (allocated and in the page cache), and
 * published as free-<k>.tls for the lowest k in 0..TL_FREE_SLOTS-1 not taken
 * (link(2), which never replaces; free-<anything>.tls when all are taken). A
 * writer claims one where it is: it opens it, checks it (its own, a regular
 * file, a sane size, allocated), maps it, and swaps `creator` from 0 to its pid
 * (compare-and-swap through the shared mapping: exactly one of racing writers
 * wins; losers try the next one). Then it writes the header and stores the
 * segment magic last (release). A process's first claim tries free-0.tls,
 * free-1.tls, ... in order without listing the directory. A reader that meets
 * free-*.tls with a valid header reads it as a claimed segment; a reader that
 * follows the spool (tapline run, the extension) names it <creator>-<seq>.tls
 * (link, then unlink the free name; <creator>-<seq>-<n>.tls when that is taken). One whose header page is
 * zeros but for `creator` is being claimed; once `creator` is gone (a writer
 * killed mid-claim) it holds no record and the reader deletes it. With none
 * ready, the writer creates its own (fallocate) under .claim-<pid>-<seq>,
 * writes the header and publishes it as <pid>-<seq>.tls with a rename
 * (renameat2 RENAME_NOREPLACE). Where segments cannot be allocated or mapped,
 * the library falls back to record files. The directory holds at most
 * TAPLINE_SPOOL_MAX_SEGMENTS claimed segments; past that, and when the disk is
 * full, records are dropped and counted (TL_DROPS), never waited for.
 *
 * ---------------------------------------------------------------------------
 * Records
 * ---------------------------------------------------------------------------
 * All integers little-endian. Every record is a 48-byte header followed by its
 * payload, zero-padded so that `length` is a multiple of 8.
 *
 * The check in `crc32` is CRC-32C (Castagnoli, reflected polynomial
 * 0x82F63B78, initial value and final xor 0xFFFFFFFF, as iSCSI and ext4;
 * SSE4.2's `crc32` and AArch64's `crc32c*` instructions). What it covers
 * depends on the version; all versions share the layout:
 *
 *   TL_VERSION (2): header bytes 4..12, then bytes 16..length (rest of the
 *     header, payload, padding). For any spool; libtapline writes it into
 *     record files, where a failed write can tear a record.
 *   TL_VERSION_SUM (3): header bytes 4..12 and 16..48, then the 8 bytes
 *     (little-endian) of S, the sum modulo 2^64 of bytes 48..length read as
 *     little-endian 64-bit words. Only where a commit word proves the record
 *     complete (segments, step 5 above); libtapline writes it there. The
 *     payload needs no CRC in a segment: its writer never tears it. What it
 *     needs is a way for a reader to notice a snapshot (a pread racing the
 *     writer: the copy is not ordered with the writer's stores) that shows
 *     the magic but not all of the payload yet: the bytes not yet stored read
 *     as the zeros the segment was filled with, and any one nonzero word
 *     among them changes S. Several can cancel (missing words whose sum is a
 *     multiple of 2^64, such as 1 and 2^64 - 1: binary payloads only; two
 *     words of text, bytes below 0x80, cannot). Such a record is read again
 *     later, not reported.
 *     S costs a few vector adds; a CRC over a 256-byte payload is 32 steps
 *     of a dependent chain.
 *   TL_VERSION_CRC32 (1): as version 2 with CRC-32 (IEEE 802.3, as zlib's
 *     crc32); written by libtapline before CRC-32C, still accepted.
 *
 * A reader that meets a version it does not know skips the record (tapline
 * counts it as skipped).
 *
 * The magic is the record's commit word: a writer into shared memory writes
 * everything else first and stores the magic last (release order). A reader
 * that finds a zero word where a record should start has reached the end of
 * what is committed.
 */
#ifndef TAPLINE_H
#define TAPLINE_H

#include <stdint.h>

#define TL_MAGIC          0x31524C54u /* "TLR1" */
#define TL_VERSION        2  /* CRC-32C over header and payload      */
#define TL_VERSION_CRC32  1  /* read, never written: zlib's CRC-32   */
#define TL_VERSION_SUM    3  /* segments: CRC-32C over header and S  */
#define TL_HEADER_LEN     48
#define TL_ALIGN          8
#define TL_MAX_RECORD_LEN (1u << 20)

struct tl_header {
    uint32_t magic;    /*  0: TL_MAGIC; the commit word                        */
    uint16_t version;  /*  4: TL_VERSION or TL_VERSION_SUM (see above)         */
    uint16_t type;     /*  6: enum tl_record_type                              */
    uint32_t length;   /*  8: whole record incl. header and padding, %8 == 0   */
    uint32_t crc32;    /* 12: see above                                        */
    uint64_t wall_ns;  /* 16: CLOCK_REALTIME, ns since the epoch (libtapline:
                        *     mono_ns + an offset re-read every 50 ms)         */
    uint64_t mono_ns;  /* 24: CLOCK_MONOTONIC, ns                              */
    uint32_t pid;      /* 32: writing process                                  */
    uint32_t tid;      /* 36: writing thread (gettid)                          */
    uint64_t conn_id;  /* 40: connection, 0 for process records; unique across
                        *     processes: (pid << 32) | per-process counter     */
};

enum tl_record_type {
    TL_PROC_START  = 1, /* first record of every file                         */
    TL_CONN_OPEN   = 2, /* a connection was classified as HTTP/1.x or TLS     */
    TL_DATA        = 3, /* captured bytes of a message part                   */
    TL_MSG_END     = 4, /* an HTTP message is complete, or was cut off        */
    TL_CONN_CLOSE  = 5, /* the connection ended                               */
    TL_TLS_INFO    = 6, /* facts from a TLS library hook                      */
    TL_DROPS       = 7, /* records lost since the last DROPS record           */
    TL_LIFECYCLE   = 8, /* Lambda Runtime API: invocation fetched / answered  */
    TL_NAME_LOOKUP = 9, /* getaddrinfo: name -> addresses                     */
    TL_H2_START      = 10, /* the connection carries HTTP/2 from here on        */
    TL_H2_HEADERS    = 11, /* one complete HTTP/2 header block                  */
    TL_H2_DATA       = 12, /* a prefix of one stream's DATA payload             */
    TL_H2_STREAM_END = 13, /* a stream ended in one direction                   */
    TL_H2_RESET      = 14, /* an RST_STREAM frame                               */
    TL_H2_GOAWAY     = 15, /* a GOAWAY frame                                    */
    TL_H2_SETTINGS   = 16, /* a SETTINGS frame (not an ACK)                     */
    TL_NOTICE        = 17, /* a blind spot: a program the library cannot see    */
    TL_FAILURE       = 18, /* a name lookup or TCP connect that failed         */
    TL_MSG_PROGRESS  = 19, /* a message's counts so far (struct tl_msg_end)    */
    TL_DATA_END      = 20, /* a TL_DATA, then its message's TL_MSG_END, in one */
};

enum tl_direction { TL_EGRESS = 0, TL_INGRESS = 1 };

/* The one-byte enumerations (tl_direction, TL_PART_*, TL_PROTO_*, TL_CLOSE_*,
 * TL_TLS_*, TL_LIFECYCLE_*) may gain values. A reader must not fail on a value
 * it does not know: the Rust definitions decode it as Unknown(value), and the
 * tapline reader leaves such a record out. Unknown record types are skipped. */

#define TL_SEG_MAGIC       0x3130304745534C54ull /* "TLSEG001"                */
#define TL_SEG_VERSION     2
#define TL_SEG_DATA_START  4096
#define TL_SEG_MAX_WRITERS 16
#define TL_FREE_SLOTS      8 /* ready-made segments: free-0.tls .. free-7.tls  */
#define TL_SEG_FRESH       0 /* state: made ahead, not claimed                */
#define TL_SEG_CLAIMED     1 /* state: writers append here                    */
#define TL_SEG_FULL        2 /* state: no more records; data_end is set       */

/* The first 128 bytes of a segment file (the rest of its first page is 0). */
struct tl_segment_header {
    uint64_t magic;      /*  0: TL_SEG_MAGIC                                  */
    uint32_t version;    /*  8: TL_SEG_VERSION                                */
    uint32_t data_start; /* 12: TL_SEG_DATA_START                             */
    uint64_t size;       /* 16: file size, header included                    */
    uint64_t reserve;    /* 24: atomic: next free offset (runs past `size`)   */
    uint32_t state;      /* 32: atomic: TL_SEG_*                              */
    uint32_t creator;    /* 36: atomic: pid of the process that claimed it    */
    uint64_t data_end;   /* 40: atomic: 0, then where records end (when full) */
    uint32_t seq;        /* 48: the creator's segment number                  */
    uint32_t epoch;      /* 52: atomic: which use of the file, from 1         */
    uint32_t consumed;   /* 56: reader: last epoch read to the end and zeroed */
    uint32_t keeper;     /* 60: atomic: pid keeping it mapped for reuse, or 0 */
    uint32_t writers[16];/* 64: atomic: pids that may write here, 0 = free    */
};

enum tl_protocol {
    TL_PROTO_HTTP1         = 1, /* plaintext HTTP/1.x on a socket                */
    TL_PROTO_TLS           = 2, /* TLS ciphertext on a socket                    */
    TL_PROTO_H2C           = 3, /* HTTP/2 (client preface seen; on a socket, or
                                 * TLS plaintext with a TL_TLS_INFO): framed,
                                 * TL_H2_* records follow                       */
    TL_PROTO_TLS_PLAINTEXT = 4, /* HTTP/1.x plaintext from a TLS library hook    */
};

enum tl_part {
    TL_PART_HEAD = 1, /* start line + header fields, as on the wire             */
    TL_PART_BODY = 2, /* body content after transfer decoding                   */
    TL_PART_RAW  = 3, /* first bytes before classification (TLS ClientHello)    */
};

struct tl_addr {      /* how addresses are stored inside payloads               */
    uint16_t family;  /* 2 = AF_INET, 10 = AF_INET6, 0 = unknown                */
    uint16_t port;    /* host order (little-endian like everything else)       */
    uint8_t addr[16]; /* IPv4 in the first 4 bytes                              */
};

/* TL_PROC_START: 16 bytes, then cmdline_len bytes of argv joined by NUL. */
struct tl_proc_start {
    uint32_t ppid;
    uint32_t cmdline_len;
    uint32_t file_seq;
    uint32_t flags;
};

/* TL_CONN_OPEN: 72 bytes (64 from older writers: no established_wall_ns). Written when the first bytes classify a connection
 * (not at connect(), so connections that never carry HTTP or TLS leave no
 * trace). TL_CONN_RUNTIME_API: the peer is the Lambda Runtime API named by
 * the traced process's own AWS_LAMBDA_RUNTIME_API (the runtime's lifecycle
 * calls; a reader must not rely on its own environment naming the same
 * address: a proxy may sit between runtime and API). */
#define TL_CONN_RUNTIME_API 0x01
/* TL_CONN_CONNECT_STARTED: connect() returned EINPROGRESS (non-blocking), so
 * connect_* is when the connect started, and the connection was established at
 * established_wall_ns (getsockopt(SO_ERROR) answered 0) when that is not 0, else
 * by this record's time (its first write). Without it, connect_* is when a
 * blocking connect() returned: its start is not known (the hook calls the real
 * function first and stamps afterwards). */
#define TL_CONN_CONNECT_STARTED 0x02
struct tl_conn_open {
    int32_t  fd;              /*  0: socket fd, -1 if known only by TLS object */
    uint8_t  protocol;        /*  4: enum tl_protocol                          */
    uint8_t  flags;           /*  5: TL_CONN_*                                 */
    uint16_t peer_family;     /*  6                                            */
    uint64_t connect_wall_ns; /*  8: connect() time (see CONNECT_STARTED)     */
    uint64_t connect_mono_ns; /* 16                                            */
    uint8_t  peer_addr[16];   /* 24                                            */
    uint16_t peer_port;       /* 40                                            */
    uint16_t local_port;      /* 42                                            */
    uint16_t local_family;    /* 44                                            */
    uint16_t reserved;        /* 46                                            */
    uint8_t  local_addr[16];  /* 48                                            */
    uint64_t established_wall_ns; /* 64: SO_ERROR said 0 (CONNECT_STARTED), else 0 */
};

/* TL_DATA: 24 bytes, then `len` captured bytes.
 * A message's head is captured up to the head limit (32 KiB); its decoded body
 * up to TAPLINE_MAX_BODY bytes. Bytes beyond are counted in TL_MSG_END, not
 * copied. `offset` places the bytes within the head or the decoded body. */
struct tl_data {
    uint8_t  dir;     /*  0: enum tl_direction                                 */
    uint8_t  part;    /*  1: enum tl_part                                      */
    uint16_t flags;   /*  2: 0                                                 */
    uint32_t msg_seq; /*  4: message index in this direction: 0, 1, 2 ...      */
    uint64_t offset;  /*  8                                                    */
    uint32_t len;     /* 16                                                    */
    uint32_t reserved;/* 20                                                    */
};

/* TL_MSG_END: 56 bytes. The header's time is when the last byte of the
 * message was written/read; start_* when its first byte was. The k-th
 * response that is not 1xx (101 excepted) answers the k-th request. */
#define TL_MSG_HEAD_TRUNCATED 0x01 /* head longer than the head limit          */
#define TL_MSG_BODY_TRUNCATED 0x02 /* body longer than TAPLINE_MAX_BODY        */
#define TL_MSG_CHUNKED        0x04 /* Transfer-Encoding: chunked               */
#define TL_MSG_UNTIL_CLOSE    0x08 /* body ended by the connection closing     */
#define TL_MSG_INCOMPLETE     0x10 /* connection ended before the message did  */
#define TL_MSG_NO_BODY        0x20 /* no body by rule (HEAD, 1xx, 204, 304)    */
#define TL_MSG_MALFORMED      0x40 /* unparseable; connection no longer framed */
struct tl_msg_end {
    uint8_t  dir;           /*  0                                              */
    uint8_t  reserved0;     /*  1                                              */
    uint16_t flags;         /*  2: TL_MSG_*                                    */
    uint32_t msg_seq;       /*  4                                              */
    uint64_t head_len;      /*  8: head bytes on the wire                      */
    uint64_t body_len;      /* 16: body bytes after transfer decoding          */
    uint64_t wire_len;      /* 24: all bytes of the message on the wire        */
    uint64_t start_wall_ns; /* 32                                              */
    uint64_t start_mono_ns; /* 40                                              */
    uint16_t status;        /* 48: response status, 0 for requests             */
    uint16_t reserved1;     /* 50                                              */
    uint32_t reserved2;     /* 52                                              */
};

/* TL_MSG_PROGRESS: the 56 bytes of struct tl_msg_end, for a message still in
 * progress: its counts so far (flags as far as known; never an end). Written
 * once its body has run past the captured prefix, then at most every 100 ms or
 * every MiB, so that a reader can say how far a message got when the process
 * died without writing its TL_MSG_END. */

/* TL_DATA_END: 80 bytes: struct tl_data (24), then struct tl_msg_end (56),
 * then the tl_data's `len` captured bytes. It means exactly the TL_DATA record
 * with those bytes, then the TL_MSG_END record, both with this record's header
 * (time, tid, conn_id). Written when the call that carried a message's last
 * captured bytes also ended the message (a small message: one record, not two);
 * a reader may split it into the two and go on as if they had been written. */

/* TL_CONN_CLOSE: 40 bytes. */
#define TL_CLOSE_CLOSED    1 /* close(), SSL_free(), gnutls_deinit()             */
#define TL_CLOSE_PEER_EOF  2 /* a read returned 0                                */
#define TL_CLOSE_ERROR     3 /* a read or write failed with `errno`              */
#define TL_CLOSE_UNTRACKED 4 /* framing lost; nothing more is captured           */
#define TL_CLOSE_UPGRADED  5 /* 101 Switching Protocols, or a CONNECT tunnel     */
#define TL_CLOSE_AT_EXIT   6 /* still open when the process exited             */
struct tl_conn_close {
    uint8_t  reason;            /*  0: TL_CLOSE_*                              */
    uint8_t  protocol;          /*  1: enum tl_protocol                        */
    uint16_t reserved;          /*  2                                          */
    int32_t  errno_value;       /*  4                                          */
    uint64_t bytes_out;         /*  8: bytes written on the socket             */
    uint64_t bytes_in;          /* 16: bytes read from the socket              */
    uint64_t first_out_wall_ns; /* 24                                          */
    uint64_t last_in_wall_ns;   /* 32                                          */
};

/* TL_TLS_INFO: 24 bytes, then sni_len bytes of server name, then alpn_len
 * bytes of the selected ALPN protocol. Written right after the ConnOpen of a
 * plaintext (TL_PROTO_TLS_PLAINTEXT) connection. When socket_conn_id names the
 * ciphertext connection of the same socket, readers report the plaintext one
 * and drop that opaque twin. */
#define TL_TLS_OPENSSL 1
#define TL_TLS_GNUTLS  2
#define TL_TLS_JSSE    3 /* Java's JSSE, read by the JVMTI agent */
struct tl_tls_info {
    uint8_t  library;  /*  0: TL_TLS_*                                         */
    uint8_t  flags;    /*  1                                                   */
    uint16_t sni_len;  /*  2                                                   */
    uint16_t alpn_len; /*  4                                                   */
    uint16_t reserved; /*  6                                                   */
    int32_t  fd;       /*  8: socket under the TLS object, -1 if unknown       */
    uint32_t reserved1;      /* 12                                             */
    uint64_t socket_conn_id; /* 16: conn_id of the socket's TLS connection, 0   */
};

/* TL_DROPS: 16 bytes; counts since this process's previous TL_DROPS. */
struct tl_drops {
    uint64_t records;
    uint64_t bytes;
};

/* TL_LIFECYCLE: 8 bytes, then id_len bytes of the Lambda request id. */
#define TL_LIFECYCLE_INVOCATION_NEXT     1
#define TL_LIFECYCLE_INVOCATION_RESPONSE 2
#define TL_LIFECYCLE_INVOCATION_ERROR    3
struct tl_lifecycle {
    uint8_t  event;
    uint8_t  reserved0;
    uint16_t id_len;
    uint32_t reserved1;
};

/* TL_NAME_LOOKUP: 8 bytes, name_len bytes of host name zero-padded to 8,
 * then `count` addresses of 20 bytes (struct tl_addr, port 0). */
struct tl_name_lookup {
    uint16_t name_len;
    uint16_t count;
    uint32_t reserved;
};

/* TL_NOTICE: 8 bytes, then path_len bytes of the program's (or object's)
 * path, cut at 4096. conn_id is 0. The header's pid is the writer; `pid` is
 * the process the notice is about (the same process after execve, the child
 * after posix_spawn). Written by the exec hooks before a program LD_PRELOAD
 * will not see runs, and by `tapline run` for CMD itself. */
#define TL_NOTICE_STATIC_EXECUTABLE 1 /* no PT_INTERP: no loader, no preload      */
#define TL_NOTICE_GO_PROGRAM        2 /* Go build id note or .go.buildinfo: Go
                                       * makes its own system calls             */
#define TL_NOTICE_SET_ID            3 /* set-uid/set-gid: the loader drops
                                       * LD_PRELOAD                             */
#define TL_NOTICE_OBJECT_UNTOUCHED  4 /* an object loaded into a traced process
                                       * that the library left untouched       */
#define TL_NOTICE_JAVA_CLASS_UNTOUCHED 5 /* a JDK class the Java agent left as
                                       * it is; path = "class: reason"         */
struct tl_notice {
    uint8_t  kind;     /*  0: TL_NOTICE_*                                      */
    uint8_t  flags;    /*  1: 0                                                */
    uint16_t path_len; /*  2                                                   */
    uint32_t pid;      /*  4: the process the notice is about                  */
};

/* TL_FAILURE: 32 bytes, then name_len bytes of name (the host looked up, or
 * the name the peer was resolved from), then reason_len bytes of text (the
 * resolver's message for TL_FAILURE_DNS). Dns: conn_id 0, once per name and
 * process. Connect: a conn_id of its own (no other record has it). */
#define TL_FAILURE_DNS     1 /* getaddrinfo failed; code = EAI_* value          */
#define TL_FAILURE_CONNECT 2 /* TCP connect failed; code = errno                */
#define TL_FAILURE_TLS     3 /* TLS handshake failed; reason = library's text   */
/* flags of a TL_FAILURE_TLS. Its conn_id is the TLS socket's (the reader makes
 * the failure that connection's error) when the socket is followed, else the
 * plaintext connection's, else one of its own. */
#define TL_FAILURE_TLS_ALERT           0x01 /* code = alert description read from
                                             * the wire (content type 21); no reason */
#define TL_FAILURE_TLS_ALERT_FROM_PEER 0x02 /* the peer sent it (else we did)     */
#define TL_FAILURE_TLS_VERIFY_ONLY     0x04 /* handshake done, certificate did not
                                             * verify: a failure only if the
                                             * connection carried no response     */
#define TL_FAILURE_TLS_ALERT_ENCRYPTED 0x08 /* TLS 1.3: an alert-sized first
                                             * encrypted record we sent; code 0   */
struct tl_failure {
    uint8_t  stage;         /*  0: TL_FAILURE_*                                */
    uint8_t  flags;         /*  1: TL_FAILURE_TLS_* (else 0)                   */
    uint16_t name_len;      /*  2                                              */
    int32_t  code;          /*  4                                              */
    uint16_t peer_family;   /*  8: as struct tl_addr; 0 for a lookup           */
    uint16_t peer_port;     /* 10                                              */
    uint8_t  peer_addr[16]; /* 12                                              */
    uint16_t reason_len;    /* 28                                              */
    uint16_t reserved;      /* 30                                              */
};

/* ---------------------------------------------------------------------------
 * HTTP/2
 * ---------------------------------------------------------------------------
 * A connection that carries HTTP/2 gets one TL_H2_START, then TL_H2_* records
 * in wire order per direction. Padding and priority fields are removed;
 * CONTINUATIONs are joined to their HEADERS or PUSH_PROMISE; PING, PRIORITY,
 * WINDOW_UPDATE and SETTINGS ACKs are not recorded. Header blocks are numbered
 * per direction (block_seq 0, 1, 2 ...): HPACK is decoded in that order, and a
 * gap (a block lost to a drop) or a truncated block leaves the direction's
 * HPACK state unknown from there on. */

/* TL_H2_START: 8 bytes. `how` says what showed HTTP/2. After an h2c upgrade
 * the HTTP/1 request upgrade_msg_seq is stream 1's request and its response
 * arrives as HTTP/2 on stream 1. */
#define TL_H2_START_PRIOR_KNOWLEDGE 1 /* client preface on a socket             */
#define TL_H2_START_TLS             2 /* client preface as TLS plaintext        */
#define TL_H2_START_H2C_UPGRADE     3 /* Upgrade: h2c answered by 101           */
struct tl_h2_start {
    uint8_t  how;             /*  0: TL_H2_START_*                             */
    uint8_t  flags;           /*  1: 0                                         */
    uint16_t reserved;        /*  2                                            */
    uint32_t upgrade_msg_seq; /*  4                                            */
};

/* TL_H2_HEADERS: 24 bytes, then `len` bytes of the header block. The record
 * time is when the block's END_HEADERS frame was read or written. A block
 * longer than the head limit (32 KiB) is cut: TL_H2_BLOCK_TRUNCATED. */
#define TL_H2_BLOCK_END_STREAM   0x01 /* the HEADERS frame had END_STREAM        */
#define TL_H2_BLOCK_TRUNCATED    0x02 /* only a prefix of block_len captured     */
#define TL_H2_BLOCK_PUSH_PROMISE 0x04 /* PUSH_PROMISE; see promised_stream_id    */
#define TL_H2_BLOCK_INCOMPLETE   0x08 /* connection ended before END_HEADERS     */
struct tl_h2_headers {
    uint8_t  dir;                /*  0: enum tl_direction                      */
    uint8_t  reserved;           /*  1                                         */
    uint16_t flags;              /*  2: TL_H2_BLOCK_*                          */
    uint32_t stream_id;          /*  4                                         */
    uint32_t promised_stream_id; /*  8: PUSH_PROMISE only, else 0              */
    uint32_t block_seq;          /* 12: header blocks before this one, this dir */
    uint32_t len;                /* 16: bytes that follow                      */
    uint32_t block_len;          /* 20: whole block length                     */
};

/* TL_H2_DATA: 24 bytes, then `len` bytes of a stream's DATA payload at
 * `offset` in the stream's data (this direction); copied up to
 * TAPLINE_MAX_BODY per stream, the rest counted in TL_H2_STREAM_END. */
struct tl_h2_data {
    uint8_t  dir;       /*  0                                                  */
    uint8_t  reserved0; /*  1                                                  */
    uint16_t flags;     /*  2: 0                                               */
    uint32_t stream_id; /*  4                                                  */
    uint64_t offset;    /*  8                                                  */
    uint32_t len;       /* 16                                                  */
    uint32_t reserved1; /* 20                                                  */
};

/* TL_H2_STREAM_END: 64 bytes, one per stream and direction. */
#define TL_H2_STREAM_END_STREAM     0x01 /* a frame carried END_STREAM          */
#define TL_H2_STREAM_RESET          0x02 /* RST_STREAM; see error_code          */
#define TL_H2_STREAM_INCOMPLETE     0x04 /* the connection ended first          */
#define TL_H2_STREAM_BODY_TRUNCATED 0x08 /* DATA beyond TAPLINE_MAX_BODY        */
#define TL_H2_STREAM_UNTRACKED      0x10 /* stream table full: no DATA copied,
                                          * counts cover the last frame only   */
struct tl_h2_stream_end {
    uint8_t  dir;           /*  0                                              */
    uint8_t  reserved0;     /*  1                                              */
    uint16_t flags;         /*  2: TL_H2_STREAM_*                              */
    uint32_t stream_id;     /*  4                                              */
    uint64_t data_len;      /*  8: DATA payload bytes, padding excluded        */
    uint64_t wire_len;      /* 16: frame bytes incl. 9-byte frame headers      */
    uint64_t first_wall_ns; /* 24: first frame of the stream, this direction   */
    uint64_t first_mono_ns; /* 32                                              */
    uint64_t last_wall_ns;  /* 40: last frame                                  */
    uint64_t last_mono_ns;  /* 48                                              */
    uint32_t error_code;    /* 56: RST_STREAM error code                       */
    uint32_t reserved1;     /* 60                                              */
};

/* TL_H2_RESET: 16 bytes; `dir` is the frame's direction. */
struct tl_h2_reset {
    uint8_t  dir;        /*  0                                                 */
    uint8_t  reserved0;  /*  1                                                 */
    uint16_t reserved1;  /*  2                                                 */
    uint32_t stream_id;  /*  4                                                 */
    uint32_t error_code; /*  8                                                 */
    uint32_t reserved2;  /* 12                                                 */
};

/* TL_H2_GOAWAY: 16 bytes; `dir` is the frame's direction. */
struct tl_h2_goaway {
    uint8_t  dir;            /*  0                                             */
    uint8_t  reserved0;      /*  1                                             */
    uint16_t reserved1;      /*  2                                             */
    uint32_t last_stream_id; /*  4                                             */
    uint32_t error_code;     /*  8                                             */
    uint32_t reserved2;      /* 12                                             */
};

/* TL_H2_SETTINGS: 16 bytes; the values the frame carried (last one wins). */
#define TL_H2_SETTINGS_HEADER_TABLE_SIZE 0x01
#define TL_H2_SETTINGS_MAX_FRAME_SIZE    0x02
struct tl_h2_settings {
    uint8_t  dir;               /*  0                                          */
    uint8_t  reserved0;         /*  1                                          */
    uint16_t flags;             /*  2: TL_H2_SETTINGS_*                        */
    uint32_t header_table_size; /*  4                                          */
    uint32_t max_frame_size;    /*  8                                          */
    uint32_t reserved1;         /* 12                                          */
};

#endif /* TAPLINE_H */

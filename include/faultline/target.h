/* target: one stopped or running x86-64 CPU behind a GDB remote stub.
 *
 * Built on rsp (bytes <-> packets). Knows registers (by name, from the stub's
 * target.xml), memory, breakpoints, stepping and stop replies, and every quirk
 * of QEMU's gdbstub, handled here and nowhere else:
 *  - `p`/`P` answer empty until target.xml was read: connect reads it first;
 *  - `?` clears all breakpoints: it is sent only during connect;
 *  - resuming while sitting on an inserted breakpoint re-reports the same PC:
 *    step/continue remove it, step once, re-insert it (under TCG a step
 *    passes over it in place: tgt_set_step_over);
 *  - under KVM `p` can be stale after a stop: registers come from one `g` per
 *    stop, cached until the next resume;
 *  - no packet is ever sent while the guest runs, except the 0x03 interrupt;
 *  - KVM has four debug-register slots shared by Z1/Z2/Z4: a refused insert
 *    (E22) is FL_ENOSLOT, and the limit is remembered (tgt_bp_slots); Z0 is
 *    accepted under KVM but may never trap, so callers use Z1 (TGT_BP_HW).
 * Every wait is bounded (see each call) and cancellable (tgt_set_cancel).
 * Register numbers, offsets in `g` and sizes come only from target.xml.
 *
 * All calls return 0 or -1 with `err` filled (see error.h). Not thread-safe.
 */
#ifndef FAULTLINE_TARGET_H
#define FAULTLINE_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "faultline/error.h"

typedef struct tgt tgt;

/* One register from the target description. */
typedef struct tgt_reg {
    char name[32];     /* "rip", "eflags", "cr2", "k_gs_base", ... */
    int regnum;        /* remote register number (for p/P) */
    size_t offset;     /* byte offset in the `g` reply */
    size_t size;       /* bytes (bitsize / 8) */
    char type[32];     /* type attribute ("int64", "x64_eflags", ...), may be "" */
} tgt_reg;

/* The parsed register map (target.xml with its xi:includes). */
typedef struct tgt_regmap {
    tgt_reg *regs;
    size_t count;
    size_t g_size;     /* sum of sizes = bytes in a full `g` reply */
    char arch[32];     /* <architecture>, e.g. "i386:x86-64" */
    struct tgt_flagset *flagsets;  /* <flags> types, for tgt_regmap_fields */
    size_t nflagsets;
} tgt_regmap;

/* Fetches one annex of qXfer:features:read (e.g. "i386-64bit.xml") into a
 * malloc'd buffer; used by the parser to follow xi:include. */
typedef int (*tgt_annex_fn)(void *ctx, const char *annex, char **xml, size_t *len, fl_error *err);

/* A named bit field of a register, from the description's <flags> type for
 * that register (e.g. eflags' "IF" is bits 9..9). */
typedef struct tgt_field {
    char name[24];
    unsigned start, end;   /* bit positions, inclusive */
} tgt_field;

/* One <flags id="..."> type of the description (storage behind tgt_regmap). */
typedef struct tgt_flagset {
    char id[32];
    tgt_field *fields;
    size_t count;
} tgt_flagset;

/* The flag fields of register `name` (its type's <flags> in target.xml), in
 * description order; *fields points into the map (do not free). A register
 * whose type has no <flags> gives *count = 0. Unknown register: FL_ENOTFOUND. */
int tgt_regmap_fields(const tgt_regmap *map, const char *name, const tgt_field **fields,
                      size_t *count, fl_error *err);

/* Parse a target description (expat) starting from annex "target.xml",
 * following xi:include through `fetch`. Pure apart from `fetch`: fuzzable. */
int tgt_tdesc_parse(tgt_annex_fn fetch, void *ctx, tgt_regmap *out, fl_error *err);
void tgt_regmap_free(tgt_regmap *map);
const tgt_reg *tgt_regmap_find(const tgt_regmap *map, const char *name);

enum tgt_stop_kind {
    TGT_STOP_SIGNAL,     /* S/T: stopped with a signal (5 = trap) */
    TGT_STOP_EXITED,     /* W: process exited (status in `code`) */
    TGT_STOP_KILLED,     /* X: terminated by signal `code` */
};

typedef struct tgt_stop {
    enum tgt_stop_kind kind;
    int code;            /* signal number or exit status */
    long thread;         /* thread id from thread:, or -1 */
    long process;        /* process id from thread:pPID.TID, or -1 */
    bool has_watch;      /* watch:/rwatch:/awatch: present */
    uint64_t watch_addr;
} tgt_stop;

/* Parse one stop-reply payload ("T05thread:p01.01;", "S05", "W00", ...).
 * Pure: fuzzable. */
int tgt_parse_stop(const char *payload, size_t len, tgt_stop *out, fl_error *err);

/* Cancellation hook, owned by the caller (the CLI: "did INT/TERM/HUP/QUIT
 * arrive?", reading a volatile sig_atomic_t). Every blocking wait of this
 * module and of rsp (connect, read, write, a running guest's stop) polls in
 * slices of at most 100 ms and checks it: once it returns non-zero, the call
 * in progress fails with FL_EINTR within about 100 ms, and so does every
 * later call that waits. A guest that was running then is still running (and
 * tgt_running() says so). To clean up after a cancellation (interrupt the
 * guest, remove breakpoints, detach), clear the hook first with
 * tgt_set_cancel(t, NULL, NULL): those exchanges are then bounded by the
 * operation timeout only. It must be cheap and must not call into tgt. */
typedef int (*tgt_cancel_fn)(void *ctx);

/* Connect to "unix:/path" or "HOST:PORT" (faultline only ever *binds* a
 * stub to a private unix socket or 127.0.0.1; connecting is to whatever the
 * user names). Performs qSupported (PacketSize),
 * QStartNoAckMode if offered, reads target.xml, `?`. The guest is stopped
 * on return. timeout_ms is one budget for the whole sequence (the socket
 * connect and every packet of the handshake, qXfer chunks included: a stub
 * answering a byte at a time fails with FL_ETIMEOUT when it is spent), and
 * afterwards the bound of each exchange while the guest is stopped. Every
 * error names the address (once). */
int tgt_connect(tgt **out, const char *address, int timeout_ms, fl_error *err);
/* The same, cancellable from the start (the hook stays set; see above). */
int tgt_connect_cancellable(tgt **out, const char *address, int timeout_ms, tgt_cancel_fn cancelled, void *ctx,
                            fl_error *err);

/* Wrap an already-connected stream fd (tests use a socketpair to a fake stub).
 * Takes ownership of fd. Same sequence as tgt_connect. */
int tgt_connect_fd(tgt **out, int fd, int timeout_ms, fl_error *err);
int tgt_connect_fd_cancellable(tgt **out, int fd, int timeout_ms, tgt_cancel_fn cancelled, void *ctx, fl_error *err);
/* Set or clear (NULL) the cancellation hook of a connected target. */
void tgt_set_cancel(tgt *t, tgt_cancel_fn cancelled, void *ctx);

/* Detach (D) if connected and stopped, close the socket, free. NULL is fine. */
void tgt_close(tgt *t);
/* Close without detaching: a stopped guest stays stopped, breakpoints still
 * inserted stay inserted, and another client may connect to the same stop. */
void tgt_release(tgt *t);
/* Send `k` (QEMU quits) then close. */
void tgt_kill(tgt *t);

const tgt_regmap *tgt_regs(const tgt *t);
/* The stub's PacketSize (bytes). */
size_t tgt_packet_size(const tgt *t);

/* Register read by name from the per-stop `g` cache (one `g` per stop).
 * Values are little-endian; registers wider than 8 bytes are refused. A
 * register the stub reports unavailable ("xx" in `g`) is an FL_EIO error
 * saying so, never a value of 0. */
int tgt_reg_read(tgt *t, const char *name, uint64_t *value, fl_error *err);
/* Same, by map entry (no name lookup: the stepping hot path). */
int tgt_reg_read_r(tgt *t, const tgt_reg *reg, uint64_t *value, fl_error *err);
/* The whole raw `g` buffer of this stop (g_size bytes), for diffing. */
int tgt_regs_raw(tgt *t, const uint8_t **buf, size_t *len, fl_error *err);
/* P by number; updates the cache. */
int tgt_reg_write(tgt *t, const char *name, uint64_t value, fl_error *err);

/* Memory (virtual addresses as the CPU sees them), chunked to the stub's limits
 * and cached per stop. An unmapped address is FL_EIO naming the address. */
int tgt_mem_read(tgt *t, uint64_t addr, void *buf, size_t len, fl_error *err);
int tgt_mem_write(tgt *t, uint64_t addr, const void *buf, size_t len, fl_error *err);
int tgt_read_u64(tgt *t, uint64_t addr, uint64_t *value, fl_error *err);

enum tgt_bp_type {
    TGT_BP_SW = 0,       /* Z0 */
    TGT_BP_HW = 1,       /* Z1 */
    TGT_WP_WRITE = 2,    /* Z2 */
    TGT_WP_READ = 3,     /* Z3 */
    TGT_WP_ACCESS = 4,   /* Z4 */
};

/* Z/z. `len` is the kind field (1 for x86 breakpoints, 1/2/4/8 watchpoints).
 * A stub refusal for want of debug registers is FL_ENOSLOT; an unsupported
 * type (empty reply) is FL_EPROTO saying which. The target remembers what is
 * inserted so step/continue can handle the "sitting on a breakpoint" quirk. */
int tgt_bp_insert(tgt *t, enum tgt_bp_type type, uint64_t addr, int len, fl_error *err);
int tgt_bp_remove(tgt *t, enum tgt_bp_type type, uint64_t addr, int len, fl_error *err);
/* Hardware slots (Z1-Z4 share them): 0 while no limit is known (TCG has
 * none); after the stub refused one with E<nn> while N were inserted, N (4
 * under KVM). A
 * caller plans with it: arm the first N stations, arm later ones as earlier
 * ones fire and are removed. */
size_t tgt_bp_slots(const tgt *t);
/* Hardware breakpoints/watchpoints inserted now. */
size_t tgt_bp_hw_in_use(const tgt *t);

/* Resuming (step or continue) from a pc that holds a Z0/Z1 breakpoint:
 * QEMU re-reports the breakpoint unless the stub steps over it. */
enum tgt_step_over {
    TGT_STEP_OVER_REMOVE, /* remove it, step, re-insert it (the default; KVM) */
    TGT_STEP_OVER_KEEP    /* step with it in place: QEMU 7.2 under TCG steps over a
                             breakpoint at the current pc (measured), saving the z/Z
                             pair. Checked at the first step-over (one `g`): a stub
                             that does not move the pc falls back to REMOVE, and so
                             does one that refuses a debug register (KVM). */
};
void tgt_set_step_over(tgt *t, enum tgt_step_over how);

/* Single-step one instruction (vCont;s, falling back to s). Blocks until the
 * stop reply or timeout (then interrupts, and fails with FL_ETIMEOUT). */
int tgt_step(tgt *t, tgt_stop *stop, int timeout_ms, fl_error *err);
/* Continue (vCont;c / c) and wait for the next stop, at most timeout_ms
 * (then the guest is interrupted and stopped, and FL_ETIMEOUT returned).
 * Console output (O packets) while it runs counts against the same
 * deadline: no packet resets it.
 * timeout_ms < 0 waits forever (only for interactive use). */
int tgt_continue(tgt *t, tgt_stop *stop, int timeout_ms, fl_error *err);
/* Two-phase continue for callers that must do other work while the guest runs
 * (for example reading the serial console): resume without waiting ... */
int tgt_resume(tgt *t, fl_error *err);
/* ... then poll for the stop reply for at most timeout_ms: returns 1 with
 * *stop filled when stopped, 0 if still running, -1 on error. */
int tgt_poll_stop(tgt *t, tgt_stop *stop, int timeout_ms, fl_error *err);
/* Send the 0x03 interrupt to a running guest and wait for its stop reply. */
int tgt_interrupt(tgt *t, tgt_stop *stop, int timeout_ms, fl_error *err);
bool tgt_running(const tgt *t);

/* The connection's socket, for a caller that speaks RSP itself while the
 * guest is stopped and no reply is pending (the benchmark's raw loop). After
 * such use call tgt_invalidate: the per-stop caches no longer hold. */
int tgt_fd(const tgt *t);
/* Drop the per-stop register and memory caches. */
void tgt_invalidate(tgt *t);

/* Raw monitor/query passthrough for things this API does not cover
 * ("qqemu.sstepbits", "Qqemu.sstep=7"): sends payload, returns the reply in a
 * NUL-terminated buffer. Not allowed while running. */
int tgt_query(tgt *t, const char *payload, char *reply, size_t cap, fl_error *err);

#endif

/*
 * dm_raw_bench: the physical limit of the libdevmapper path. It makes exactly the
 * libdevmapper calls the devmapper addon makes for each `dm` operation (src-native/dm_task.cc:
 * RunTask, CollectResults, the log capture of libdm_lock.cc), in a loop, and times each
 * operation with CLOCK_MONOTONIC. Nothing else: no JavaScript, no thread hop, no process
 * per operation.
 *
 * Mirrored choices, per task: one process-wide mutex held around the libdevmapper calls; a
 * log function installed with dm_log_with_errno_init that formats lines up to notice
 * level into a buffer; create, resume and remove carry a udev cookie (dm_task_set_cookie,
 * flags 0); a task without a cookie ends with dm_task_update_nodes(), one with a cookie with
 * a wait for udev; the results the addon copies out (dm_task_get_info, the uuid, the message
 * response, the target lines) are read before dm_task_destroy. The one difference: the
 * cookie wait here is libdevmapper's blocking dm_udev_wait(), where the addon polls
 * dm_udev_wait_immediate() with a growing sleep so that it can bound the wait.
 *
 * Usage:
 *   dm_raw_bench POOL OP COUNT [key=value ...]   one batch; prints one JSON line
 *   dm_raw_bench --serve POOL                    batches read from stdin, one per line
 *                                                ("OP COUNT [key=value ...]"), one JSON
 *                                                line each; "quit" or EOF ends
 *   dm_raw_bench --version                       library version and udev sync support
 *
 * In the --serve form, a line "spawn<TAB>ARGV0<TAB>ARG1..." runs that command once with
 * posix_spawn (clone with CLONE_VFORK, as Go's os/exec starts dmsetup for containerd), its
 * stdin from /dev/null and its stdout and stderr drained from one pipe, and reports the time
 * from spawn to exit: {"op":"spawn","count":1,"ns":[N]} (or "error" with the exit status and
 * the first part of the output). Process-per-operation tools are measured this way, from a
 * small process, so that the cost of forking a large one (node) does not count against them.
 *
 * Operations (ids are thin ids; device i of a batch is named PREFIX<id>):
 *   create_thin COUNT id=FIRST                  message "create_thin <id>"
 *   create_snap COUNT id=FIRST base=FIRSTBASE [base_step=1]
 *                                               message "create_snap <id> <base>"
 *   create_snap_active COUNT id=FIRST base=FIRSTBASE prefix=P
 *                                               as dm.createSnapDevice with an active
 *                                               origin P<base>: info, suspend, message, resume
 *   delete COUNT id=FIRST                       message "delete <id>"
 *   set_transaction_id COUNT from=T             messages "set_transaction_id T T+1", ...
 *   activate COUNT id=FIRST prefix=P size=SECTORS [ro=1]
 *                                               create P<id> with "0 SECTORS thin /dev/mapper/POOL <id>"
 *   suspend_resume COUNT id=FIRST prefix=P      suspend P<id>, then resume it (one op)
 *   remove COUNT id=FIRST prefix=P              remove P<id>
 *   info COUNT name=NAME                        info NAME, COUNT times
 *   info COUNT id=FIRST prefix=P                info P<id>, once per device
 *   pool_status COUNT                           status POOL, COUNT times
 *   lifecycle COUNT id=FIRST base=IMAGE prefix=P size=SECTORS from=T mnt=DIR [meta=DIR]
 *                                               a layer's life, as a DeviceSet lives it,
 *                                               with the fewest kernel calls: create_snap
 *                                               <id> IMAGE (origin inactive) and
 *                                               set_transaction_id; activate; mkdir
 *                                               DIR/<id> and mount(2) ext4 there; write
 *                                               4 KiB to a file in it and fsync; umount2
 *                                               (MNT_DETACH), rmdir, remove; delete <id>
 *                                               and set_transaction_id. Transaction ids
 *                                               T+2i .. T+2i+2. With meta=DIR, the metadata
 *                                               files a DeviceSet writes too (see
 *                                               lifecycle_op). Adds "steps": per
 *                                               operation, ns of create, mount, write,
 *                                               unmount, delete.
 *   write4k COUNT name=PATH                     write 4 KiB to PATH (created or truncated)
 *                                               and fsync, COUNT times
 *
 * Any operation takes hop=1: each operation then runs on a worker thread while the caller
 * waits in epoll_wait for an eventfd, as an async addon call runs on libuv's thread pool.
 *
 * Output: {"op":..,"count":N,"udevSync":bool,"ns":[per-op nanoseconds]} or, on a failed
 * operation, {"op":..,"error":"..","errno":N,"index":I,"logs":[..]} (exit status 1 in the
 * one-batch form).
 *
 * Build: cc -O2 -pthread -o dist-bench/bin/dm_raw_bench bench/raw/dm_raw_bench.c $(pkg-config --cflags --libs devmapper)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libdevmapper.h>
#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_COUNT 100000
#define LOG_LINES 64

/* ---- the addon's log capture and lock (libdm_lock.cc) ---- */

struct log_line {
  int level;
  int err;
  char message[1024];
};

static pthread_mutex_t libdm_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct log_line logs[LOG_LINES];
static int log_count;
static int capturing;
static const int capture_level = 5;

static void capture_log(int level, const char *file, int line, int dm_errno_or_class, const char *f,
                        ...) {
  const int saved_errno = errno;
  (void)file;
  (void)line;
  level &= 0x0f;
  if (!capturing || level > capture_level) return;
  struct log_line *l = &logs[log_count < LOG_LINES ? log_count : LOG_LINES - 1];
  va_list ap;
  va_start(ap, f);
  int n = vsnprintf(l->message, sizeof l->message, f, ap);
  va_end(ap);
  if (n < 0) return;
  int err = 0;
  if (level <= 4) err = dm_errno_or_class == -1 ? saved_errno : dm_errno_or_class;
  l->level = level;
  l->err = err > 0 ? err : 0;
  if (log_count < LOG_LINES) log_count++;
}

static void call_begin(void) {
  pthread_mutex_lock(&libdm_mutex);
  log_count = 0;
  capturing = 1;
}

static void call_end(void) {
  capturing = 0;
  pthread_mutex_unlock(&libdm_mutex);
}

/* ---- one task, the way RunTask runs it ---- */

struct failure {
  int set;
  int err;
  char what[256];
};

static struct failure failure;

static void fail(const char *what, struct dm_task *dmt) {
  failure.set = 1;
  failure.err = dmt ? dm_task_get_errno(dmt) : 0;
  if (failure.err == 0)
    for (int i = 0; i < log_count; i++)
      if (logs[i].level <= 3 && logs[i].err > 0) failure.err = logs[i].err;
  snprintf(failure.what, sizeof failure.what, "%s", what);
}

struct task {
  int type;
  const char *name;
  const char *message;  /* DM_DEVICE_TARGET_MSG */
  uint64_t length;      /* DM_DEVICE_CREATE: one target */
  const char *target;
  const char *params;
  int add_node_on_create;
  int read_only;
};

/* What CollectResults copies out; kept in globals so the compiler cannot drop the reads. */
static struct dm_info last_info;
static char last_uuid[129];
static char last_response[4096];
static char last_params[4096];

static int type_has_info(int type) {
  return type != DM_DEVICE_TARGET_MSG && type != DM_DEVICE_REMOVE && type != DM_DEVICE_LIST &&
         type != DM_DEVICE_VERSION && type != DM_DEVICE_LIST_VERSIONS && type != DM_DEVICE_MKNODES;
}

static void collect(struct dm_task *dmt, int type) {
  if (type_has_info(type) && dm_task_get_info(dmt, &last_info) && last_info.exists) {
    const char *uuid = dm_task_get_uuid(dmt);
    snprintf(last_uuid, sizeof last_uuid, "%s", uuid ? uuid : "");
  }
  if (type == DM_DEVICE_STATUS || type == DM_DEVICE_TABLE) {
    void *next = NULL;
    do {
      uint64_t start = 0, length = 0;
      char *ttype = NULL, *params = NULL;
      next = dm_get_next_target(dmt, next, &start, &length, &ttype, &params);
      if (ttype) snprintf(last_params, sizeof last_params, "%s", params ? params : "");
    } while (next);
  } else if (type == DM_DEVICE_TARGET_MSG) {
    const char *resp = dm_task_get_message_response(dmt);
    snprintf(last_response, sizeof last_response, "%s", resp ? resp : "");
  }
}

/* Returns 1 on success; on failure fills `failure`. */
static int run_task(const struct task *t) {
  uint32_t cookie = 0;
  int ok = 0;
  int use_cookie = t->type == DM_DEVICE_CREATE || t->type == DM_DEVICE_RESUME || t->type == DM_DEVICE_REMOVE;
  call_begin();
  struct dm_task *dmt = dm_task_create(t->type);
  if (!dmt) {
    fail("dm_task_create", NULL);
  } else {
    int configured = dm_task_set_name(dmt, t->name);
    if (configured && t->target) configured = dm_task_add_target(dmt, 0, t->length, t->target, t->params);
    if (configured && t->type == DM_DEVICE_TARGET_MSG)
      configured = dm_task_set_sector(dmt, 0) && dm_task_set_message(dmt, t->message);
    if (configured && t->read_only) configured = dm_task_set_ro(dmt);
    if (configured && t->add_node_on_create) configured = dm_task_set_add_node(dmt, DM_ADD_NODE_ON_CREATE);
    if (!configured) {
      fail("configure task", dmt);
    } else if (use_cookie && !dm_task_set_cookie(dmt, &cookie, 0)) {
      fail("dm_task_set_cookie", dmt);
    } else if (dm_task_run(dmt)) {
      collect(dmt, t->type);
      ok = 1;
    } else {
      fail("dm_task_run", dmt);
    }
    dm_task_destroy(dmt);
  }
  if (cookie == 0) dm_task_update_nodes();
  call_end();
  if (cookie != 0) {
    call_begin();
    dm_udev_wait(cookie); /* as the addon: a failed wait does not fail the operation */
    call_end();
  }
  return ok;
}

/* ---- operations ---- */

struct args {
  const char *pool;
  const char *op;
  long count;
  long id;
  long base;
  long base_step;
  long from;
  const char *prefix;
  const char *name;
  uint64_t size;
  int read_only;
  int hop;
  const char *mnt;
  const char *meta;
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int message(const char *pool, const char *text) {
  struct task t = {.type = DM_DEVICE_TARGET_MSG, .name = pool, .message = text};
  return run_task(&t);
}

/* dm.createSnapDevice with an active origin: info, suspend (file system frozen), message, resume. */
static int snap_active(const char *pool, const char *origin, long id, long base) {
  char msg[64];
  snprintf(msg, sizeof msg, "create_snap %ld %ld", id, base);
  struct task info = {.type = DM_DEVICE_INFO, .name = origin};
  if (!run_task(&info)) return 0;
  if (!(last_info.exists && !last_info.suspended)) return message(pool, msg);
  struct task suspend = {.type = DM_DEVICE_SUSPEND, .name = origin};
  if (!run_task(&suspend)) return 0;
  int sent = message(pool, msg);
  struct failure saved = failure;
  struct task resume = {.type = DM_DEVICE_RESUME, .name = origin};
  int resumed = run_task(&resume);
  if (!sent) failure = saved;
  return sent && resumed;
}

/* ---- lifecycle: a layer created, mounted, written, unmounted and deleted ---- */

#define LIFECYCLE_STEPS 5
static uint64_t step_ns[MAX_COUNT][LIFECYCLE_STEPS];

static int sys_fail(const char *what) {
  failure.set = 1;
  failure.err = errno;
  snprintf(failure.what, sizeof failure.what, "%s", what);
  return 0;
}

/* open, fsync, close of a directory: what makes a rename or unlink in it durable. */
static int sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return sys_fail("open metadata directory");
  int ok = fsync(fd) == 0;
  if (!ok) sys_fail("fsync metadata directory");
  close(fd);
  return ok;
}

/* The DeviceSet's atomic, durable metadata write: a temporary file in the same directory,
 * write, fsync, close, rename over the target, fsync of the directory. */
static int write_meta(const char *dir, const char *file, const char *text) {
  char tmp[512], path[512];
  snprintf(tmp, sizeof tmp, "%s/.tmp%ld", dir, (long)getpid());
  snprintf(path, sizeof path, "%s/%s", dir, file);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return sys_fail("create metadata temporary file");
  size_t len = strlen(text);
  int ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
  if (!ok) sys_fail("write metadata");
  close(fd);
  if (ok && rename(tmp, path) != 0) ok = sys_fail("rename metadata");
  if (!ok) unlink(tmp);
  return ok && sync_dir(dir);
}

static int remove_meta(const char *dir, const char *file) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  if (unlink(path) != 0) return sys_fail("remove metadata");
  return sync_dir(dir);
}

/* 4 KiB to path, fsync: the user's write into the mounted layer. */
static int write_4k(const char *path) {
  static char block[4096];
  memset(block, 'x', sizeof block);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return sys_fail("open file in the mounted layer");
  int ok = write(fd, block, sizeof block) == (ssize_t)sizeof block && fsync(fd) == 0;
  if (!ok) sys_fail("write and fsync 4 KiB");
  if (close(fd) != 0 && ok) ok = sys_fail("close");
  return ok;
}

/* One layer's life (index i of the batch), step times into step_ns[i]. With meta, the same
 * metadata files as DeviceSet.addDevice (transaction intent, device file, deviceset file)
 * and deleteDevice (transaction intent, device file removed), in the same places of the
 * sequence; the JSON is Docker's shape, the bytes are not the point. */
static int lifecycle_op(const struct args *a, long i) {
  char name[256], dir[512], file[600], text[256], params[300], msg[64];
  long id = a->id + i;
  long t = a->from + 2 * i;
  uint64_t *ns = step_ns[i];
  uint64_t t0 = now_ns();
  snprintf(name, sizeof name, "%s%ld", a->prefix, id);
  snprintf(dir, sizeof dir, "%s/%ld", a->mnt, id);
  snprintf(file, sizeof file, "%s/file", dir);
  char hash[32];
  snprintf(hash, sizeof hash, "layer%ld", id);

  /* create */
  if (a->meta) {
    snprintf(text, sizeof text, "{\"open_transaction_id\":%ld,\"device_hash\":\"%s\",\"device_id\":%ld}", t + 1, hash, id);
    if (!write_meta(a->meta, "transaction-metadata", text)) return 0;
  }
  snprintf(msg, sizeof msg, "create_snap %ld %ld", id, a->base);
  if (!message(a->pool, msg)) return 0;
  if (a->meta) {
    snprintf(text, sizeof text,
             "{\"device_id\":%ld,\"size\":%" PRIu64 ",\"transaction_id\":%ld,\"initialized\":false,\"deleted\":false}", id,
             a->size * 512, t + 1);
    if (!write_meta(a->meta, hash, text)) return 0;
    snprintf(text, sizeof text, "{\"next_device_id\":%ld,\"BaseDeviceUUID\":\"\",\"BaseDeviceFilesystem\":\"ext4\"}", id);
    if (!write_meta(a->meta, "deviceset-metadata", text)) return 0;
  }
  snprintf(msg, sizeof msg, "set_transaction_id %ld %ld", t, t + 1);
  if (!message(a->pool, msg)) return 0;
  uint64_t t1 = now_ns();
  ns[0] = t1 - t0;

  /* mount */
  snprintf(params, sizeof params, "/dev/mapper/%s %ld", a->pool, id);
  struct task act = {.type = DM_DEVICE_CREATE, .name = name, .length = a->size, .target = "thin",
                     .params = params, .add_node_on_create = 1};
  if (!run_task(&act)) return 0;
  if (mkdir(dir, 0755) != 0) return sys_fail("mkdir mount point");
  char dev[300];
  snprintf(dev, sizeof dev, "/dev/mapper/%s", name);
  if (mount(dev, dir, "ext4", 0, "") != 0) return sys_fail("mount");
  uint64_t t2 = now_ns();
  ns[1] = t2 - t1;

  /* write */
  if (!write_4k(file)) return 0;
  uint64_t t3 = now_ns();
  ns[2] = t3 - t2;

  /* unmount */
  if (umount2(dir, MNT_DETACH | UMOUNT_NOFOLLOW) != 0) return sys_fail("umount2");
  if (rmdir(dir) != 0) return sys_fail("rmdir mount point");
  struct task rm = {.type = DM_DEVICE_REMOVE, .name = name};
  if (!run_task(&rm)) return 0;
  uint64_t t4 = now_ns();
  ns[3] = t4 - t3;

  /* delete */
  if (a->meta) {
    snprintf(text, sizeof text, "{\"open_transaction_id\":%ld,\"device_hash\":\"%s\",\"device_id\":%ld}", t + 2, hash, id);
    if (!write_meta(a->meta, "transaction-metadata", text)) return 0;
  }
  snprintf(msg, sizeof msg, "delete %ld", id);
  if (!message(a->pool, msg)) return 0;
  if (a->meta && !remove_meta(a->meta, hash)) return 0;
  snprintf(msg, sizeof msg, "set_transaction_id %ld %ld", t + 1, t + 2);
  if (!message(a->pool, msg)) return 0;
  ns[4] = now_ns() - t4;
  return 1;
}

/* Runs one operation (index i of the batch); 1 on success. */
static int one_op(const struct args *a, long i) {
  char text[128], name[256], params[300];
  long id = a->id + i;
  if (a->prefix) snprintf(name, sizeof name, "%s%ld", a->prefix, id);
  if (!strcmp(a->op, "create_thin")) {
    snprintf(text, sizeof text, "create_thin %ld", id);
    return message(a->pool, text);
  }
  if (!strcmp(a->op, "create_snap")) {
    snprintf(text, sizeof text, "create_snap %ld %ld", id, a->base + i * a->base_step);
    return message(a->pool, text);
  }
  if (!strcmp(a->op, "create_snap_active")) {
    long base = a->base + i * a->base_step;
    snprintf(name, sizeof name, "%s%ld", a->prefix, base);
    return snap_active(a->pool, name, id, base);
  }
  if (!strcmp(a->op, "delete")) {
    snprintf(text, sizeof text, "delete %ld", id);
    return message(a->pool, text);
  }
  if (!strcmp(a->op, "set_transaction_id")) {
    snprintf(text, sizeof text, "set_transaction_id %ld %ld", a->from + i, a->from + i + 1);
    return message(a->pool, text);
  }
  if (!strcmp(a->op, "activate")) {
    snprintf(params, sizeof params, "/dev/mapper/%s %ld", a->pool, id);
    struct task t = {.type = DM_DEVICE_CREATE, .name = name, .length = a->size, .target = "thin",
                     .params = params, .add_node_on_create = 1, .read_only = a->read_only};
    return run_task(&t);
  }
  if (!strcmp(a->op, "suspend_resume")) {
    struct task s = {.type = DM_DEVICE_SUSPEND, .name = name};
    struct task r = {.type = DM_DEVICE_RESUME, .name = name};
    return run_task(&s) && run_task(&r);
  }
  if (!strcmp(a->op, "remove")) {
    struct task t = {.type = DM_DEVICE_REMOVE, .name = name};
    return run_task(&t);
  }
  if (!strcmp(a->op, "info")) {
    struct task t = {.type = DM_DEVICE_INFO, .name = a->prefix ? name : a->name};
    return run_task(&t) && last_info.exists;
  }
  if (!strcmp(a->op, "pool_status")) {
    struct task t = {.type = DM_DEVICE_STATUS, .name = a->pool};
    return run_task(&t);
  }
  if (!strcmp(a->op, "lifecycle")) return lifecycle_op(a, i);
  if (!strcmp(a->op, "write4k")) return write_4k(a->name);
  snprintf(failure.what, sizeof failure.what, "unknown operation");
  failure.set = 1;
  return 0;
}

static void json_string(FILE *out, const char *s) {
  fputc('"', out);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(out, "\\%c", c);
    else if (c < 0x20)
      fprintf(out, "\\u%04x", c);
    else
      fputc(c, out);
  }
  fputc('"', out);
}

static const char *check_args(const struct args *a) {
  if (a->count < 1 || a->count > MAX_COUNT) return "COUNT must be 1..100000";
  if (!strcmp(a->op, "activate") && (!a->prefix || a->size == 0)) return "activate needs prefix= and size=";
  if ((!strcmp(a->op, "suspend_resume") || !strcmp(a->op, "remove") || !strcmp(a->op, "create_snap_active")) &&
      !a->prefix)
    return "this operation needs prefix=";
  if (!strcmp(a->op, "info") && !a->prefix && !a->name) return "info needs name= or prefix=";
  if (!strcmp(a->op, "lifecycle") && (!a->prefix || !a->mnt || a->size == 0)) return "lifecycle needs prefix=, mnt= and size=";
  if (!strcmp(a->op, "write4k") && !a->name) return "write4k needs name=";
  return NULL;
}

/* ---- hop=1: each operation on a worker thread, the way an async addon call runs ----
 * The caller hands the operation to a waiting thread (mutex and condition variable, as
 * libuv's thread pool) and sleeps in epoll_wait on an eventfd the thread writes when done
 * (as uv_async_send wakes the event loop). The cheapest possible thread hop: one per
 * operation, no JavaScript, none of libuv's own bookkeeping. */

static struct {
  int started;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  const struct args *a;
  long index;
  int pending;
  int result;
  int efd;
  int epfd;
} hop = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void *hop_thread(void *unused) {
  (void)unused;
  pthread_mutex_lock(&hop.mu);
  for (;;) {
    while (!hop.pending) pthread_cond_wait(&hop.cv, &hop.mu);
    const struct args *a = hop.a;
    long i = hop.index;
    pthread_mutex_unlock(&hop.mu);
    int r = one_op(a, i);
    pthread_mutex_lock(&hop.mu);
    hop.result = r;
    hop.pending = 0;
    uint64_t one = 1;
    if (write(hop.efd, &one, sizeof one) != sizeof one) abort();
  }
  return NULL;
}

static int one_op_hop(const struct args *a, long i) {
  if (!hop.started) {
    hop.efd = eventfd(0, EFD_CLOEXEC);
    hop.epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN};
    if (hop.efd < 0 || hop.epfd < 0 || epoll_ctl(hop.epfd, EPOLL_CTL_ADD, hop.efd, &ev) != 0 ||
        pthread_create(&hop.thread, NULL, hop_thread, NULL) != 0) {
      snprintf(failure.what, sizeof failure.what, "cannot start the worker thread");
      failure.set = 1;
      return 0;
    }
    hop.started = 1;
  }
  pthread_mutex_lock(&hop.mu);
  hop.a = a;
  hop.index = i;
  hop.pending = 1;
  pthread_cond_signal(&hop.cv);
  pthread_mutex_unlock(&hop.mu);
  struct epoll_event ev;
  while (epoll_wait(hop.epfd, &ev, 1, -1) < 1) {
  }
  uint64_t v;
  if (read(hop.efd, &v, sizeof v) != sizeof v) abort();
  pthread_mutex_lock(&hop.mu);
  int r = hop.result;
  pthread_mutex_unlock(&hop.mu);
  return r;
}

/* Runs a batch and prints its JSON line; returns 1 on success. */
static int batch(const struct args *a, FILE *out) {
  static uint64_t ns[MAX_COUNT];
  fprintf(out, "{\"op\":");
  json_string(out, a->op);
  const char *bad = check_args(a);
  if (bad) {
    fprintf(out, ",\"error\":");
    json_string(out, bad);
    fprintf(out, "}\n");
    fflush(out);
    return 0;
  }
  memset(&failure, 0, sizeof failure);
  long done = 0;
  for (; done < a->count; done++) {
    uint64_t t0 = now_ns();
    int ok = a->hop ? one_op_hop(a, done) : one_op(a, done);
    ns[done] = now_ns() - t0;
    if (!ok) break;
  }
  if (done < a->count) {
    fprintf(out, ",\"index\":%ld,\"errno\":%d,\"error\":", done, failure.err);
    char what[512];
    snprintf(what, sizeof what, "%s failed: %s", failure.what, failure.err > 0 ? strerror(failure.err) : "no errno");
    json_string(out, what);
    fprintf(out, ",\"logs\":[");
    for (int i = 0; i < log_count; i++) {
      if (i) fputc(',', out);
      json_string(out, logs[i].message);
    }
    fprintf(out, "]}\n");
    fflush(out);
    return 0;
  }
  fprintf(out, ",\"count\":%ld,\"udevSync\":%s,\"ns\":[", a->count, dm_udev_get_sync_support() ? "true" : "false");
  for (long i = 0; i < a->count; i++) fprintf(out, i ? ",%" PRIu64 : "%" PRIu64, ns[i]);
  fprintf(out, "]");
  if (!strcmp(a->op, "lifecycle")) {
    fprintf(out, ",\"steps\":[");
    for (long i = 0; i < a->count; i++) {
      fprintf(out, i ? ",[" : "[");
      for (int k = 0; k < LIFECYCLE_STEPS; k++) fprintf(out, k ? ",%" PRIu64 : "%" PRIu64, step_ns[i][k]);
      fprintf(out, "]");
    }
    fprintf(out, "]");
  }
  fprintf(out, "}\n");
  fflush(out);
  return 1;
}

/* Reads "OP COUNT key=value..." words into a; returns NULL or a usage error. */
static const char *parse_words(int n, char **w, struct args *a) {
  if (n < 2) return "expected: OP COUNT [key=value ...]";
  a->op = w[0];
  a->count = strtol(w[1], NULL, 10);
  a->id = 0;
  a->base = 0;
  a->base_step = 1;
  a->from = 0;
  a->prefix = NULL;
  a->name = NULL;
  a->size = 0;
  a->read_only = 0;
  a->hop = 0;
  a->mnt = NULL;
  a->meta = NULL;
  for (int i = 2; i < n; i++) {
    char *eq = strchr(w[i], '=');
    if (!eq) return "arguments after COUNT are key=value";
    *eq = 0;
    const char *k = w[i], *v = eq + 1;
    if (!strcmp(k, "id"))
      a->id = strtol(v, NULL, 10);
    else if (!strcmp(k, "base"))
      a->base = strtol(v, NULL, 10);
    else if (!strcmp(k, "base_step"))
      a->base_step = strtol(v, NULL, 10);
    else if (!strcmp(k, "from"))
      a->from = strtol(v, NULL, 10);
    else if (!strcmp(k, "prefix"))
      a->prefix = v;
    else if (!strcmp(k, "name"))
      a->name = v;
    else if (!strcmp(k, "size"))
      a->size = strtoull(v, NULL, 10);
    else if (!strcmp(k, "ro"))
      a->read_only = strcmp(v, "0") != 0;
    else if (!strcmp(k, "hop"))
      a->hop = strcmp(v, "0") != 0;
    else if (!strcmp(k, "mnt"))
      a->mnt = v;
    else if (!strcmp(k, "meta"))
      a->meta = v;
    else
      return "unknown key";
  }
  return NULL;
}

static void usage_error(const char *why) {
  fprintf(stderr, "dm_raw_bench: %s\nusage: dm_raw_bench POOL OP COUNT [key=value ...] | --serve POOL | --version\n", why);
}

/* Connects to the driver (the DM_VERSION check libdevmapper makes once per process), so
 * the first timed operation does not pay for it. The addon's process has made it too. */
static void warm_up(void) {
  char buf[64];
  call_begin();
  dm_driver_version(buf, sizeof buf);
  call_end();
}

/* Runs argv once, as described above; prints its JSON line. */
static void spawn_once(char **argv) {
  int fds[2];
  char output[512];
  size_t kept = 0;
  output[0] = 0;
  if (pipe2(fds, O_CLOEXEC) != 0) {
    printf("{\"op\":\"spawn\",\"error\":\"pipe: %s\"}\n", strerror(errno));
    fflush(stdout);
    return;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  uint64_t t0 = now_ns();
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  close(fds[1]);
  int status = 0;
  if (rc == 0) {
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) != 0) {
      if (n < 0) {
        if (errno == EINTR) continue;
        break;
      }
      size_t take = (size_t)n < sizeof output - 1 - kept ? (size_t)n : sizeof output - 1 - kept;
      memcpy(output + kept, buf, take);
      kept += take;
      output[kept] = 0;
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  uint64_t ns = now_ns() - t0;
  close(fds[0]);
  posix_spawn_file_actions_destroy(&fa);
  printf("{\"op\":\"spawn\"");
  if (rc != 0) {
    printf(",\"error\":");
    json_string(stdout, strerror(rc));
  } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    printf(",\"status\":%d,\"error\":", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    json_string(stdout, output);
  } else {
    printf(",\"count\":1,\"ns\":[%" PRIu64 "]", ns);
  }
  printf("}\n");
  fflush(stdout);
}

static int serve(const char *pool) {
  char line[4096];
  char lib[64] = "";
  dm_get_library_version(lib, sizeof lib);
  printf("{\"ready\":true,\"library\":");
  json_string(stdout, lib);
  printf(",\"udevSync\":%s}\n", dm_udev_get_sync_support() ? "true" : "false");
  fflush(stdout);
  while (fgets(line, sizeof line, stdin)) {
    char *words[32];
    int n = 0;
    if (!strncmp(line, "spawn\t", 6)) {
      line[strcspn(line, "\r\n")] = 0;
      for (char *tok = strtok(line + 6, "\t"); tok && n < 31; tok = strtok(NULL, "\t")) words[n++] = tok;
      words[n] = NULL;
      if (n == 0) {
        printf("{\"op\":\"spawn\",\"error\":\"no command\"}\n");
        fflush(stdout);
      } else {
        spawn_once(words);
      }
      continue;
    }
    for (char *tok = strtok(line, " \t\r\n"); tok && n < 32; tok = strtok(NULL, " \t\r\n")) words[n++] = tok;
    if (n == 0) continue;
    if (!strcmp(words[0], "quit")) break;
    struct args a = {.pool = pool};
    const char *bad = parse_words(n, words, &a);
    if (bad) {
      printf("{\"error\":");
      json_string(stdout, bad);
      printf("}\n");
      fflush(stdout);
      continue;
    }
    batch(&a, stdout);
  }
  return 0;
}

/* libdevmapper creates /dev/mapper/control when it is missing, even on a kernel without
 * device-mapper, and a stray node makes other tools believe the kernel has it: make no
 * libdevmapper call that opens the control device unless /proc/misc lists the driver. */
static int kernel_has_dm(void) {
  FILE *f = fopen("/proc/misc", "r");
  char line[128];
  int found = 0;
  if (!f) return 0;
  while (!found && fgets(line, sizeof line, f)) found = strstr(line, " device-mapper") != NULL;
  fclose(f);
  return found;
}

int main(int argc, char **argv) {
  dm_log_with_errno_init(capture_log);
  int has_dm = kernel_has_dm();
  if (argc == 2 && !strcmp(argv[1], "--version")) {
    char lib[64] = "";
    dm_get_library_version(lib, sizeof lib);
    printf("{\"library\":");
    json_string(stdout, lib);
    /* dm_udev_get_sync_support() already creates the control node. */
    if (has_dm) printf(",\"udevSync\":%s", dm_udev_get_sync_support() ? "true" : "false");
    printf(",\"kernelHasDeviceMapper\":%s}\n", has_dm ? "true" : "false");
    return 0;
  }
  if (!has_dm) {
    fprintf(stderr, "dm_raw_bench: this kernel has no device-mapper (no device-mapper line in /proc/misc)\n");
    return 3;
  }
  if (argc == 3 && !strcmp(argv[1], "--serve")) {
    warm_up();
    return serve(argv[2]);
  }
  if (argc < 4) {
    usage_error("missing arguments");
    return 2;
  }
  struct args a = {.pool = argv[1]};
  const char *bad = parse_words(argc - 2, argv + 2, &a);
  if (bad) {
    usage_error(bad);
    return 2;
  }
  warm_up();
  return batch(&a, stdout) ? 0 : 1;
}

/*
 * SQLite's operating-system layer for a vmlet guest (SQLITE_OS_OTHER=1): a VFS
 * whose files are heap buffers kept by name, so databases, journals and temp
 * files all live in guest memory and are captured by snapshots. Randomness
 * comes from vmlet_random_u64 (reseeded by the host for every new or restored
 * sandbox), the time from clock_gettime (the host's vmlet_clock_gettime).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sqlite3.h"
#include "vmlet.h"

typedef struct mem_file_data {
  struct mem_file_data *next;
  char *name;
  unsigned char *bytes;
  sqlite3_int64 size, capacity;
  int open_count, delete_on_close;
} mem_file_data;

typedef struct {
  sqlite3_file base;
  mem_file_data *data;
} mem_file;

static mem_file_data *files;

static mem_file_data *find(const char *name) {
  for (mem_file_data *f = files; f; f = f->next)
    if (strcmp(f->name, name) == 0) return f;
  return NULL;
}

static void unlink_data(mem_file_data *d) {
  for (mem_file_data **p = &files; *p; p = &(*p)->next) {
    if (*p == d) {
      *p = d->next;
      break;
    }
  }
  free(d->bytes);
  free(d->name);
  free(d);
}

static int mem_close(sqlite3_file *file) {
  mem_file_data *d = ((mem_file *)file)->data;
  if (--d->open_count == 0 && d->delete_on_close) unlink_data(d);
  return SQLITE_OK;
}

static int mem_read(sqlite3_file *file, void *buf, int n, sqlite3_int64 offset) {
  mem_file_data *d = ((mem_file *)file)->data;
  sqlite3_int64 available = offset < d->size ? d->size - offset : 0;
  sqlite3_int64 copied = available < n ? available : n;
  if (copied > 0) memcpy(buf, d->bytes + offset, (size_t)copied);
  if (copied == n) return SQLITE_OK;
  memset((char *)buf + copied, 0, (size_t)(n - copied)); /* SQLite requires the rest zeroed */
  return SQLITE_IOERR_SHORT_READ;
}

static int ensure_capacity(mem_file_data *d, sqlite3_int64 needed) {
  if (needed <= d->capacity) return SQLITE_OK;
  sqlite3_int64 capacity = d->capacity ? d->capacity : 4096;
  while (capacity < needed) capacity *= 2;
  unsigned char *bytes = realloc(d->bytes, (size_t)capacity);
  if (!bytes) return SQLITE_IOERR_NOMEM;
  d->bytes = bytes;
  d->capacity = capacity;
  return SQLITE_OK;
}

static int mem_write(sqlite3_file *file, const void *buf, int n, sqlite3_int64 offset) {
  mem_file_data *d = ((mem_file *)file)->data;
  int rc = ensure_capacity(d, offset + n);
  if (rc != SQLITE_OK) return rc;
  if (offset > d->size) memset(d->bytes + d->size, 0, (size_t)(offset - d->size));
  memcpy(d->bytes + offset, buf, (size_t)n);
  if (offset + n > d->size) d->size = offset + n;
  return SQLITE_OK;
}

static int mem_truncate(sqlite3_file *file, sqlite3_int64 size) {
  mem_file_data *d = ((mem_file *)file)->data;
  if (size < d->size) d->size = size;
  return SQLITE_OK;
}

static int mem_sync(sqlite3_file *file, int flags) {
  (void)file, (void)flags;
  return SQLITE_OK;
}

static int mem_file_size(sqlite3_file *file, sqlite3_int64 *size) {
  *size = ((mem_file *)file)->data->size;
  return SQLITE_OK;
}

/* One connection per guest: locks always succeed. */
static int mem_lock(sqlite3_file *file, int level) {
  (void)file, (void)level;
  return SQLITE_OK;
}

static int mem_check_reserved(sqlite3_file *file, int *reserved) {
  (void)file;
  *reserved = 0;
  return SQLITE_OK;
}

static int mem_file_control(sqlite3_file *file, int op, void *arg) {
  (void)file, (void)op, (void)arg;
  return SQLITE_NOTFOUND;
}

static int mem_sector_size(sqlite3_file *file) {
  (void)file;
  return 4096;
}

static int mem_device_characteristics(sqlite3_file *file) {
  (void)file;
  return SQLITE_IOCAP_ATOMIC | SQLITE_IOCAP_SAFE_APPEND | SQLITE_IOCAP_SEQUENTIAL | SQLITE_IOCAP_POWERSAFE_OVERWRITE;
}

static const sqlite3_io_methods mem_io = {
    .iVersion = 1,
    .xClose = mem_close,
    .xRead = mem_read,
    .xWrite = mem_write,
    .xTruncate = mem_truncate,
    .xSync = mem_sync,
    .xFileSize = mem_file_size,
    .xLock = mem_lock,
    .xUnlock = mem_lock,
    .xCheckReservedLock = mem_check_reserved,
    .xFileControl = mem_file_control,
    .xSectorSize = mem_sector_size,
    .xDeviceCharacteristics = mem_device_characteristics,
};

static int mem_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out_flags) {
  (void)vfs;
  static unsigned temp_counter;
  char temp_name[32];
  if (!name) { /* a temp file SQLite names itself */
    snprintf(temp_name, sizeof temp_name, "/temp-%u", ++temp_counter);
    name = temp_name;
  }
  mem_file_data *d = find(name);
  if (!d) {
    if (!(flags & SQLITE_OPEN_CREATE)) return SQLITE_CANTOPEN;
    d = calloc(1, sizeof *d);
    if (!d || !(d->name = strdup(name))) {
      free(d);
      return SQLITE_NOMEM;
    }
    d->next = files;
    files = d;
  }
  d->open_count++;
  d->delete_on_close = (flags & SQLITE_OPEN_DELETEONCLOSE) != 0;
  ((mem_file *)file)->data = d;
  file->pMethods = &mem_io;
  if (out_flags) *out_flags = flags;
  return SQLITE_OK;
}

static int mem_delete(sqlite3_vfs *vfs, const char *name, int sync_dir) {
  (void)vfs, (void)sync_dir;
  mem_file_data *d = find(name);
  if (!d) return SQLITE_IOERR_DELETE_NOENT;
  if (d->open_count) d->delete_on_close = 1;
  else unlink_data(d);
  return SQLITE_OK;
}

static int mem_access(sqlite3_vfs *vfs, const char *name, int flags, int *result) {
  (void)vfs, (void)flags;
  mem_file_data *d = find(name);
  *result = d != NULL && d->size > 0;
  return SQLITE_OK;
}

static int mem_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out) {
  (void)vfs;
  if ((int)strlen(name) >= n) return SQLITE_CANTOPEN;
  strcpy(out, name);
  return SQLITE_OK;
}

static int mem_randomness(sqlite3_vfs *vfs, int n, char *out) {
  (void)vfs;
  for (int i = 0; i < n; i += 8) {
    uint64_t r = vmlet_random_u64();
    memcpy(out + i, &r, (size_t)(n - i < 8 ? n - i : 8));
  }
  return n;
}

static int mem_sleep(sqlite3_vfs *vfs, int microseconds) {
  (void)vfs;
  return microseconds; /* nothing to wait for: no other connection holds a lock */
}

/* Julian day in milliseconds, as SQLite wants it. */
static int mem_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out) {
  (void)vfs;
  struct timespec ts;
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return SQLITE_ERROR;
  *out = 210866760000000LL + (sqlite3_int64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  return SQLITE_OK;
}

static int mem_current_time(sqlite3_vfs *vfs, double *out) {
  sqlite3_int64 ms = 0;
  int rc = mem_current_time_int64(vfs, &ms);
  *out = (double)ms / 86400000.0;
  return rc;
}

static int mem_last_error(sqlite3_vfs *vfs, int n, char *out) {
  (void)vfs, (void)n, (void)out;
  return 0;
}

static sqlite3_vfs mem_vfs = {
    .iVersion = 2,
    .szOsFile = sizeof(mem_file),
    .mxPathname = 512,
    .zName = "vmlet-memory",
    .xOpen = mem_open,
    .xDelete = mem_delete,
    .xAccess = mem_access,
    .xFullPathname = mem_full_pathname,
    .xRandomness = mem_randomness,
    .xSleep = mem_sleep,
    .xCurrentTime = mem_current_time,
    .xGetLastError = mem_last_error,
    .xCurrentTimeInt64 = mem_current_time_int64,
};

int sqlite3_os_init(void) { return sqlite3_vfs_register(&mem_vfs, 1); }

int sqlite3_os_end(void) { return SQLITE_OK; }

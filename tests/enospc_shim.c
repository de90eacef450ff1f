/* A full disk for one folder, for tests (tests/test_exit_paths.py): LD_PRELOAD'ed, it fails every
 * write(2)-family call on a file under $ENOSPC_DIR with ENOSPC ("No space left on device") once
 * $ENOSPC_AFTER_BYTES bytes have been written there. Python's and tensorstore's writes both go
 * through these libc calls, so orbax meets the error exactly as on a full disk. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

static long long budget = -2; /* -2: not read yet; -1: no limit */
static const char *dir;

/* Whether a write of n bytes to fd finds the disk full (errno set to ENOSPC). */
static int full(int fd, size_t n) {
  if (budget == -2) {
    const char *bytes = getenv("ENOSPC_AFTER_BYTES");
    dir = getenv("ENOSPC_DIR");
    budget = (bytes && dir) ? atoll(bytes) : -1;
  }
  if (budget < 0) return 0;
  char link[64], path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t len = readlink(link, path, sizeof path - 1);
  if (len <= 0) return 0;
  path[len] = 0;
  if (strncmp(path, dir, strlen(dir)) != 0) return 0;
  if ((long long)n > budget) {
    budget = 0;
    errno = ENOSPC;
    return 1;
  }
  budget -= n;
  return 0;
}

static size_t total(const struct iovec *v, int count) {
  size_t n = 0;
  for (int i = 0; i < count; i++) n += v[i].iov_len;
  return n;
}

#define NEXT(name) \
  static __typeof__(name) *next; \
  if (!next) next = dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void *b, size_t n) {
  NEXT(write);
  return full(fd, n) ? -1 : next(fd, b, n);
}
ssize_t pwrite(int fd, const void *b, size_t n, off_t o) {
  NEXT(pwrite);
  return full(fd, n) ? -1 : next(fd, b, n, o);
}
ssize_t pwrite64(int fd, const void *b, size_t n, off_t o) {
  NEXT(pwrite64);
  return full(fd, n) ? -1 : next(fd, b, n, o);
}
ssize_t writev(int fd, const struct iovec *v, int c) {
  NEXT(writev);
  return full(fd, total(v, c)) ? -1 : next(fd, v, c);
}
ssize_t pwritev(int fd, const struct iovec *v, int c, off_t o) {
  NEXT(pwritev);
  return full(fd, total(v, c)) ? -1 : next(fd, v, c, o);
}
ssize_t pwritev64(int fd, const struct iovec *v, int c, off_t o) {
  NEXT(pwritev64);
  return full(fd, total(v, c)) ? -1 : next(fd, v, c, o);
}

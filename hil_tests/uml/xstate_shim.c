/*
 * xstate_shim.c: LD_PRELOAD shim that lets Debian's linux.uml (6.1) run on hosts whose XSAVE area is larger
 * than UML's fixed floating-point buffer (CPUs with AMX: 11008 bytes on Sapphire Rapids and later).
 *
 * The host kernel accepts PTRACE_SETREGSET(NT_X86_XSTATE) only with a buffer of exactly its full user XSAVE
 * size and answers EFAULT otherwise; UML 6.1 passes its own smaller buffer, so the first context switch kills
 * the guest's init ("ptrace set fp regs failed, errno = 14"). This shim forwards every other ptrace call
 * unchanged and, for that one request, copies UML's bytes into a zeroed full-size buffer and clears the
 * XSTATE_BV bits of the components that do not fit in UML's buffer (they are restored to their initial
 * state, which is all UML could offer anyway: it never saved them). Newer UML kernels size the buffer
 * dynamically and need no shim; the shim is a no-op when sizes already match.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>

#define XSTATE_BV_OFFSET 512
#define XSTATE_HEADER_END 576
#define PROBE_SIZE (64 * 1024)

typedef long (*ptrace_fn)(int, pid_t, void *, void *);

static ptrace_fn real_ptrace(void)
{
	static ptrace_fn fn;
	if (!fn)
		fn = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");
	return fn;
}

/* The host's full user XSAVE size, learnt once from the kernel itself (GETREGSET reports what it wrote). */
static size_t host_xstate_size(pid_t pid)
{
	static size_t size;
	if (!size) {
		void *probe = calloc(1, PROBE_SIZE);
		struct iovec iov = { probe, PROBE_SIZE };
		if (probe && real_ptrace()(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &iov) == 0)
			size = iov.iov_len;
		free(probe);
	}
	return size;
}

/* Bits of the XSAVE components (standard format) that end within the first `len` bytes. CPUID traps to the
 * hypervisor in a VM, so the answer is computed once per length (UML always passes the same one). */
static uint64_t components_within(size_t len)
{
	static size_t cached_len;
	static uint64_t cached_mask;
	if (len == cached_len)
		return cached_mask;
	uint64_t mask = 0x3; /* x87 and SSE live in the legacy area */
	for (unsigned int i = 2; i < 63; i++) {
		unsigned int size, offset, ecx, edx;
		__cpuid_count(0xD, i, size, offset, ecx, edx);
		if (size != 0 && !(ecx & 1) && (size_t)offset + size <= len)
			mask |= (uint64_t)1 << i;
	}
	cached_len = len;
	cached_mask = mask;
	return mask;
}

long ptrace(enum __ptrace_request request, ...)
{
	va_list ap;
	va_start(ap, request);
	pid_t pid = va_arg(ap, pid_t);
	void *addr = va_arg(ap, void *);
	void *data = va_arg(ap, void *);
	va_end(ap);

	if (request == PTRACE_SETREGSET && (uintptr_t)addr == NT_X86_XSTATE && data) {
		struct iovec *iov = data;
		size_t full = host_xstate_size(pid);
		if (full > iov->iov_len && iov->iov_len >= XSTATE_HEADER_END) {
			/* One buffer for the process: UML issues these calls from a single thread at a time. */
			static uint8_t *buf;
			if (!buf && !(buf = malloc(full))) {
				errno = ENOMEM;
				return -1;
			}
			memcpy(buf, iov->iov_base, iov->iov_len);
			memset(buf + iov->iov_len, 0, full - iov->iov_len);
			uint64_t bv;
			memcpy(&bv, buf + XSTATE_BV_OFFSET, sizeof(bv));
			bv &= components_within(iov->iov_len);
			memcpy(buf + XSTATE_BV_OFFSET, &bv, sizeof(bv));
			struct iovec big = { buf, full };
			return real_ptrace()(request, pid, addr, &big);
		}
	}
	return real_ptrace()(request, pid, addr, data);
}

# scripts/install.mk: `make lib`, `make install`, `make uninstall`.
# Included from the top Makefile, after its variables (LIB_SRCS, LIB_OBJS, B,
# CC, WARN, INCS, LIBS, CFLAGS) are set. See docs/install.md.
#
#   make install   PREFIX=/usr/local DESTDIR=    (both honoured; DESTDIR only
#                  prefixes the copies, PREFIX is what the binary and the .pc
#                  record)
#   make uninstall (same PREFIX and DESTDIR): removes exactly what install put
#   make lib       build/libfaultline.a, build/libfaultline.so.VERSION (+ links)
#                  and build/install/faultline.pc for the current PREFIX
#
# The library is every module but the command line: rsp, target, kernel,
# decode, capture, report, vm (and whatever src/*.c joins LIB_SRCS). Debian 12
# ships libdwarf as a shared library (libdwarf1), so the shared libfaultline
# links it like the other dependencies and the kernel layer stays in.

PREFIX       ?= /usr/local
DESTDIR      ?=
BINDIR       ?= $(PREFIX)/bin
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
DATAROOTDIR  ?= $(PREFIX)/share
MANDIR       ?= $(DATAROOTDIR)/man
PKGDATADIR   ?= $(DATAROOTDIR)/faultline
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
BASHCOMPDIR  ?= $(DATAROOTDIR)/bash-completion/completions
INSTALL      ?= install
LDFLAGS      ?=

# One version, the program's own (src/main.c), so the two cannot drift.
FL_VERSION  := $(or $(shell sed -n 's/.*define FAULTLINE_VERSION "\([0-9.]*\)".*/\1/p' src/main.c),0.1.0)
FL_SOMAJOR  := $(firstword $(subst ., ,$(FL_VERSION)))
FL_SONAME   := libfaultline.so.$(FL_SOMAJOR)
FL_SOREAL   := libfaultline.so.$(FL_VERSION)
FL_SHLIB    := $(B)/$(FL_SOREAL)
FL_PIC_OBJS := $(LIB_SRCS:src/%.c=$(B)/pic/%.o)
FL_HEADERS  := $(notdir $(wildcard include/faultline/*.h))
FL_PC       := $(B)/install/faultline.pc
FL_BIN      := $(B)/install/faultline
# What the guest needs at run time; build/vm/vmlinux is a link into the
# user's cache and is installed as a copy (see docs/install.md for why).
FL_GUEST    := $(B)/vm/vmlinux $(B)/vm/initramfs.cpio.gz $(B)/vm/kernel-version
FL_MAN1     := docs/man/faultline.1
FL_MAN5     := docs/man/faultline-json.5
# In the .pc, directories under PREFIX are written as ${prefix}/... so
# `pkg-config --define-prefix` can relocate a copied tree.
fl_pcdir     = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))

.PHONY: lib install uninstall fl-force
lib: $(B)/libfaultline.a $(FL_SHLIB) $(FL_PC)

# ---- the shared library: position-independent objects in build/pic ----

$(B)/pic/%.o: src/%.c $(wildcard include/faultline/*.h src/*.h) | $(B)/pic
	$(CC) $(WARN) $(INCS) $(CFLAGS) -fPIC -c $< -o $@

# Exported: everything but the kernel layer's internal helpers (kernel_internal.h:
# kd_, kl_, kt_), which the library's own files share and nobody else may call.
# A lone '*' has the lowest priority in a version script, so the locals win.
$(B)/pic/libfaultline.map: scripts/install.mk | $(B)/pic
	printf '{\n  global: *;\n  local: kd_*; kl_*; kt_*;\n};\n' >$@

$(FL_SHLIB): $(FL_PIC_OBJS) $(B)/pic/libfaultline.map
	$(CC) -shared -Wl,-soname,$(FL_SONAME) -Wl,--version-script=$(B)/pic/libfaultline.map \
	  -Wl,--no-undefined $(CFLAGS) $(LDFLAGS) $(FL_PIC_OBJS) $(LIBS) -o $@
	ln -sfn $(FL_SOREAL) $(B)/$(FL_SONAME)
	ln -sfn $(FL_SONAME) $(B)/libfaultline.so

$(B)/pic $(B)/install:
	mkdir -p $@

# ---- what depends on PREFIX: rebuilt whenever the directories change ----

# Rewritten only when its contents change, so an install with the same PREFIX
# relinks nothing, and one with another PREFIX cannot reuse a stale binary.
$(B)/install/dirs: fl-force | $(B)/install
	@printf '%s\n' '$(PREFIX)' '$(LIBDIR)' '$(INCLUDEDIR)' '$(PKGDATADIR)' '$(FL_VERSION)' >$@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi

$(FL_PC): scripts/faultline.pc.in $(B)/install/dirs
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(call fl_pcdir,$(LIBDIR))|g' \
	    -e 's|@INCLUDEDIR@|$(call fl_pcdir,$(INCLUDEDIR))|g' -e 's|@VERSION@|$(FL_VERSION)|g' \
	    $< >$@.tmp && mv -f $@.tmp $@

# The installed program: the same main.c and static library as bin/faultline,
# but it finds its guest files in PKGDATADIR, not in this source tree. It links
# libfaultline.a (as bin/faultline does): a tool in $(PREFIX)/bin should not
# need LD_LIBRARY_PATH or an rpath to start.
$(FL_BIN): src/main.c $(B)/libfaultline-cli.a $(B)/libfaultline.a $(B)/install/dirs
	$(CC) $(WARN) $(INCS) $(CFLAGS) -DFAULTLINE_DATADIR='"$(PKGDATADIR)"' $< $(B)/libfaultline-cli.a $(B)/libfaultline.a $(LIBS) $(LDFLAGS) -o $@

# Built when missing (a first `make install` on a fresh clone); `make vm`
# refreshes them. A dangling vmlinux link (cache deleted) counts as missing.
$(FL_GUEST) &:
	scripts/build-vm.sh $(B)/vm

# ---- install / uninstall ----

install: $(FL_BIN) $(B)/libfaultline.a $(FL_SHLIB) $(FL_PC) $(FL_GUEST) $(FL_MAN1) $(FL_MAN5) scripts/faultline.bash-completion
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) \
	  $(DESTDIR)$(INCLUDEDIR)/faultline $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	  $(DESTDIR)$(PKGDATADIR) $(DESTDIR)$(BASHCOMPDIR)
	$(INSTALL) -m 0755 $(FL_BIN) $(DESTDIR)$(BINDIR)/faultline
	$(INSTALL) -m 0644 $(B)/libfaultline.a $(DESTDIR)$(LIBDIR)/libfaultline.a
	$(INSTALL) -m 0755 $(FL_SHLIB) $(DESTDIR)$(LIBDIR)/$(FL_SOREAL)
	ln -sfn $(FL_SOREAL) $(DESTDIR)$(LIBDIR)/$(FL_SONAME)
	ln -sfn $(FL_SONAME) $(DESTDIR)$(LIBDIR)/libfaultline.so
	$(INSTALL) -m 0644 $(FL_PC) $(DESTDIR)$(PKGCONFIGDIR)/faultline.pc
	$(INSTALL) -m 0644 $(addprefix include/faultline/,$(FL_HEADERS)) $(DESTDIR)$(INCLUDEDIR)/faultline/
	$(INSTALL) -m 0644 $(FL_MAN1) $(DESTDIR)$(MANDIR)/man1/faultline.1
	$(INSTALL) -m 0644 $(FL_MAN5) $(DESTDIR)$(MANDIR)/man5/faultline-json.5
	$(INSTALL) -m 0644 scripts/faultline.bash-completion $(DESTDIR)$(BASHCOMPDIR)/faultline
	$(INSTALL) -m 0644 $(B)/vm/vmlinux $(DESTDIR)$(PKGDATADIR)/vmlinux
	$(INSTALL) -m 0644 $(B)/vm/initramfs.cpio.gz $(DESTDIR)$(PKGDATADIR)/initramfs.cpio.gz
	$(INSTALL) -m 0644 $(B)/vm/kernel-version $(DESTDIR)$(PKGDATADIR)/kernel-version

# Removes the files install put and the two directories that are ours alone;
# shared directories (lib/pkgconfig, share/man/man1, ...) stay.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/faultline
	rm -f $(DESTDIR)$(LIBDIR)/libfaultline.a $(DESTDIR)$(LIBDIR)/$(FL_SOREAL) \
	  $(DESTDIR)$(LIBDIR)/$(FL_SONAME) $(DESTDIR)$(LIBDIR)/libfaultline.so
	rm -f $(DESTDIR)$(PKGCONFIGDIR)/faultline.pc
	rm -f $(addprefix $(DESTDIR)$(INCLUDEDIR)/faultline/,$(FL_HEADERS))
	rm -f $(DESTDIR)$(MANDIR)/man1/faultline.1 $(DESTDIR)$(MANDIR)/man5/faultline-json.5
	rm -f $(DESTDIR)$(BASHCOMPDIR)/faultline
	rm -f $(DESTDIR)$(PKGDATADIR)/vmlinux $(DESTDIR)$(PKGDATADIR)/initramfs.cpio.gz \
	  $(DESTDIR)$(PKGDATADIR)/kernel-version
	rmdir $(DESTDIR)$(INCLUDEDIR)/faultline $(DESTDIR)$(PKGDATADIR) 2>/dev/null || true

# vmlet guest SDK build rules. Include from a guest's Makefile:
#   VMLET_SDK := path/to/vmlet/guest        (in a project: $(shell npx vmlet sdk-path))
#   include $(VMLET_SDK)/sdk.mk
#   build/hello.elf: hello.c $(VMLET_LIB) ; $(VMLET_LINK)
# The flags mirror `vmlet sdk-path --cflags/--cxxflags/--ldflags/--libs` (src/cli/guest-flags.ts;
# test/cli-guest.test.ts keeps the two equal).
VMLET_SDK ?= $(dir $(lastword $(MAKEFILE_LIST)))
VMLET_SDK := $(patsubst %/,%,$(VMLET_SDK))
VMLET_BUILD := $(VMLET_SDK)/build
VMLET_LIB := $(VMLET_BUILD)/libvmlet.a

GUEST_CC ?= gcc
GUEST_CXX ?= g++
# Warnings, not errors: a guest's own code decides. The SDK library and vmlet's own
# guests add -Werror (VMLET_WERROR).
GUEST_WARNINGS ?= -Wall -Wextra
VMLET_WERROR := -Werror
GUEST_COMMON_FLAGS := -O2 -g -ffreestanding -fno-stack-protector -fno-pic -fno-pie -mno-red-zone \
  -fno-asynchronous-unwind-tables -fno-builtin -nostdlib -nostdinc -isystem $(shell $(GUEST_CC) -print-file-name=include) \
  -I$(VMLET_SDK)/include $(GUEST_WARNINGS)
GUEST_CFLAGS := -std=gnu11 $(GUEST_COMMON_FLAGS)
# C++: no exceptions, RTTI or thread-safe statics (nothing in a guest could support them).
GUEST_CXXFLAGS := -std=gnu++17 $(GUEST_COMMON_FLAGS) -fno-exceptions -fno-rtti -fno-threadsafe-statics
GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-T,$(VMLET_SDK)/link.ld -Wl,-z,noexecstack \
  -Wl,-z,max-page-size=4096

# The library's rules exist only beside its sources (a vmlet checkout). The SDK in the npm
# package ships libvmlet.a and start.S.o prebuilt, and nothing here may rewrite them.
ifneq ($(wildcard $(VMLET_SDK)/src/start.S),)
VMLET_SDK_SOURCES := $(wildcard $(VMLET_SDK)/src/*.c) $(VMLET_SDK)/src/start.S
VMLET_SDK_OBJECTS := $(patsubst $(VMLET_SDK)/src/%,$(VMLET_BUILD)/%.o,$(VMLET_SDK_SOURCES))

$(VMLET_BUILD)/%.c.o: $(VMLET_SDK)/src/%.c $(wildcard $(VMLET_SDK)/include/*.h $(VMLET_SDK)/src/*.h)
	@mkdir -p $(VMLET_BUILD)
	$(GUEST_CC) $(GUEST_CFLAGS) $(VMLET_WERROR) -c $< -o $@

$(VMLET_BUILD)/%.S.o: $(VMLET_SDK)/src/%.S $(wildcard $(VMLET_SDK)/include/*.h)
	@mkdir -p $(VMLET_BUILD)
	$(GUEST_CC) $(GUEST_CFLAGS) $(VMLET_WERROR) -c $< -o $@

$(VMLET_LIB): $(VMLET_SDK_OBJECTS)
	rm -f $@
	ar rcs $@ $^
endif

# Profiling (make VMLET_PROFILE=1; docs/debugging.md, "Memory profiles"): guests link the
# SDK's profiling library, which counts each allocation at its call stack, and keep frame
# pointers so the guest can walk that stack (and no tail calls, which would drop frames from
# it). The plain library has no profiling code at all.
VMLET_PROFILE_CFLAGS := -DVMLET_PROFILE=1 -fno-omit-frame-pointer -fno-optimize-sibling-calls
VMLET_PROFILE_LIB := $(VMLET_BUILD)/profile/libvmlet.a
VMLET_PROFILE_OBJECTS := $(patsubst $(VMLET_BUILD)/%,$(VMLET_BUILD)/profile/%,$(VMLET_SDK_OBJECTS))
ifeq ($(VMLET_PROFILE),1)
VMLET_LIB := $(VMLET_PROFILE_LIB)
endif

$(VMLET_BUILD)/profile/%.o: $(VMLET_SDK)/src/% $(wildcard $(VMLET_SDK)/include/*.h $(VMLET_SDK)/src/*.h)
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) $(VMLET_PROFILE_CFLAGS) -c $< -o $@

$(VMLET_PROFILE_LIB): $(VMLET_PROFILE_OBJECTS)
	rm -f $@
	ar rcs $@ $^

# A guest linked with the profiling library (also through a target-specific VMLET_LIB) is compiled for it.
VMLET_LINK_CFLAGS = $(GUEST_CFLAGS) $(if $(filter $(VMLET_PROFILE_LIB),$(VMLET_LIB)),$(VMLET_PROFILE_CFLAGS))

# Links one guest from its C sources: $(VMLET_LINK) in a rule whose prerequisites are .c files.
VMLET_LINK = @mkdir -p $(dir $@) && $(GUEST_CC) $(VMLET_LINK_CFLAGS) $(GUEST_LDFLAGS) -o $@ $(filter %.c,$^) \
  $(dir $(VMLET_LIB))start.S.o $(VMLET_LIB) -lgcc

# A thin wrapper over meson. `make demo` runs the seed scenario (busmap demo); `make check`
# runs every test, also under AddressSanitizer+UBSan (whole guests: the hostile one and one
# SeaBIOS boot) and (the threaded tests) ThreadSanitizer, then each fuzz target briefly.
# Both first install missing Debian packages when run as root, or say which are missing.

BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_TSAN ?= build-tsan
BUILD_FUZZ ?= build-fuzz
MESON_OPTS ?=
ASAN_GUESTS ?= kvm-hostile kvm-seabios-bootdisk-smp2-bhyve kvm-cmdline-errors kvm-conc-smp2 kvm-bars-bhyve

DEB_PACKAGES := meson ninja-build pkg-config gcc clang liburcu-dev libcmocka-dev \
		libbsd-dev valgrind libclang-rt-dev python3 \
		seabios u-boot-qemu qemu-system-x86 busybox-static cpio

.PHONY: all deps demo check check-plain check-asan check-tsan check-fuzz bench clean

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)

deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "Installing:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
		else \
			echo "Missing packages:$$missing"; \
			echo "Install them with: sudo apt-get install$$missing"; \
			exit 1; \
		fi; \
	fi

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) $(MESON_OPTS)

$(BUILD_ASAN)/build.ninja: | deps
	CC=clang meson setup $(BUILD_ASAN) -Db_sanitize=address,undefined -Db_lundef=false \
		-Dbuildtype=debug -Dbench=false $(MESON_OPTS)

$(BUILD_TSAN)/build.ninja: | deps
	CC=clang meson setup $(BUILD_TSAN) -Db_sanitize=thread -Db_lundef=false \
		-Dbuildtype=debug -Dbench=false $(MESON_OPTS)

$(BUILD_FUZZ)/build.ninja: | deps
	CC=clang meson setup $(BUILD_FUZZ) -Dfuzz=true -Db_lundef=false -Dbench=false $(MESON_OPTS)

demo: all
	./$(BUILD)/tools/busmap/busmap demo

check: check-plain check-asan check-tsan check-fuzz

check-plain: all
	meson test -C $(BUILD) --print-errorlogs

# Whole guests under the sanitizers: those they learn most from (each costs a nested boot).
check-asan: $(BUILD_ASAN)/build.ninja
	ninja -C $(BUILD_ASAN)
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
		meson test -C $(BUILD_ASAN) --print-errorlogs --no-suite vmm-kvm --no-suite vmm-guests
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
		meson test -C $(BUILD_ASAN) --print-errorlogs $(ASAN_GUESTS)

check-tsan: $(BUILD_TSAN)/build.ninja
	ninja -C $(BUILD_TSAN)
	TSAN_OPTIONS=halt_on_error=1 meson test -C $(BUILD_TSAN) --suite concurrency --print-errorlogs

# Each libFuzzer target for 20 seconds on its corpus (tests/fuzz/run.sh for long runs).
check-fuzz: $(BUILD_FUZZ)/build.ninja
	ninja -C $(BUILD_FUZZ)
	meson test -C $(BUILD_FUZZ) --suite fuzz --print-errorlogs

bench: all
	./$(BUILD)/bench/busmap-bench
	./$(BUILD)/bench/busmap-pci-bench
# Whole guests (bench/vmm/run.py): minutes; VMM_BENCH_OPTS=--quick for a shorter run.
# Status 77 means no KVM, not even the nested one: a skip, not a failure.
	python3 bench/vmm/run.py --build $(BUILD) $(VMM_BENCH_OPTS) || [ $$? = 77 ]

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN) $(BUILD_FUZZ)

// A vmlet guest in C++: running statistics over the numbers the host sends.
// Build: npx vmlet guest build stats.cpp -o stats.elf   (C++17, no exceptions, no RTTI)
// Call:  node dist/examples/cpp-guest/main.js stats.elf 3 1 4 1 5   (from a vmlet checkout)
#include <vmlet.h>

namespace {

// Templates, classes, constexpr, lambdas and new/delete work; the C++ standard library
// does not exist here (no <vector>, <string>): <new> is the one C++ header the SDK has.
template <typename T>
constexpr T smaller(T a, T b) { return a < b ? a : b; }

template <typename T>
constexpr T larger(T a, T b) { return a < b ? b : a; }

class Stats {
 public:
  uint32_t add(double value) {
    min_ = count_ == 0 ? value : smaller(min_, value);
    max_ = count_ == 0 ? value : larger(max_, value);
    sum_ += value;
    return ++count_;
  }
  double mean() const { return count_ == 0 ? 0.0 : sum_ / count_; }
  double min() const { return min_; }
  double max() const { return max_; }
  uint32_t count() const { return count_; }

 private:
  uint32_t count_ = 0;
  double sum_ = 0, min_ = 0, max_ = 0;
};

Stats stats;  // guest memory persists from call to call

// Sorts bytes in place with a comparison passed as a lambda.
template <typename Less>
void insertion_sort(uint8_t *data, uint32_t n, Less less) {
  for (uint32_t i = 1; i < n; i++) {
    uint8_t x = data[i];
    uint32_t j = i;
    for (; j > 0 && less(x, data[j - 1]); j--) data[j] = data[j - 1];
    data[j] = x;
  }
}

}  // namespace

// Exports are plain functions with the C types of their VMLET_EXPORT signature; the
// macro checks those types at compile time (noexcept is fine).
static uint32_t push(double value) noexcept { return stats.add(value); }
VMLET_EXPORT(push, U32, F64);

static double mean() { return stats.mean(); }
VMLET_EXPORT(mean, F64);

static const char *summary() {
  char *text = static_cast<char *>(vmlet_scratch(96));
  if (!text) vmlet_out_of_memory();
  snprintf(text, 96, "n=%u min=%g max=%g mean=%g", stats.count(), stats.min(), stats.max(), stats.mean());
  return text;
}
VMLET_EXPORT(summary, STRING);

static vmlet_bytes sorted_descending(vmlet_bytes data) {
  uint8_t *out = static_cast<uint8_t *>(vmlet_scratch(data.len));
  if (!out && data.len) vmlet_out_of_memory();
  memcpy(out, data.ptr, data.len);
  insertion_sort(out, data.len, [](uint8_t a, uint8_t b) { return a > b; });
  return vmlet_bytes{out, data.len};
}
VMLET_EXPORT(sorted_descending, BYTES, BYTES);

// Hooks the SDK calls by their C names need C linkage.
extern "C" void vmlet_init(void) { VMLET_INFO("stats guest ready"); }

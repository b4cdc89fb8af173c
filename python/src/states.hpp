// The copies Table's slow reads return to Python (states.cpp binds them).
#pragma once

#include "binding.hpp"

#include <optional>
#include <string>

namespace healthtable::python {

/// A provider's record and what is_healthy() answered when it was copied.
struct StateView {
  ProviderState state;
  bool available = true;
};
StateView state_view(ProviderState s);

/// TableInfo, the kernel's answer on the writer lock, and the data's age.
struct InfoView {
  TableInfo info;
  bool writer_attached = false;
  py::object data_age; ///< float seconds, or None
  bool writer_stale = true;
};
InfoView info_view(const Table& table);

/// Pick, with the chosen provider's name and retry_at in Unix seconds.
struct PickView {
  std::optional<std::size_t> index;
  std::optional<std::string> provider;
  bool available = false;
  bool panic = false;
  std::string reason;
  std::optional<double> retry_at;
};

} // namespace healthtable::python

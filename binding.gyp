{
  "targets": [
    {
      "target_name": "vmlet",
      "sources": [
        "native/addon.c",
        "native/napi_util.c",
        "native/kvm_system.c",
        "native/kvm_vm.c",
        "native/kvm_vcpu.c",
        "native/vcpu_run.c",
        "native/vcpu_thread.c",
        "native/vcpu_restore.c",
        "native/dirty_ring.c",
        "native/memory.c",
        "native/reaper.c",
        "native/memory_file.c",
        "native/file_lock.c",
        "native/random.c",
        "native/process_spawner.c",
        "native/work_thread.c",
        "native/cpu.c",
        "native/process_child.c",
        "native/process_notify.c",
        "native/process_dirty.c"
      ],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "defines": ["_GNU_SOURCE"],
      "libraries": ["-lpthread", "-lrt", "-ldl"]
    }
  ]
}

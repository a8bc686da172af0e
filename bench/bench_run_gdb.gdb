# GDB's side of bench/bench_run.sh: the capture `faultline run --scenario
# write` does, done by GDB 13 in batch mode against the same VM. A template:
# bench_run.sh replaces @VMLINUX@, @DIR@ (its private 0700 directory, holding
# gdb.sock and the console FIFOs con.in/con.out), @TARGET@ and @PAGE@.
#
# Same protocol as faultline: load the kernel's symbols while the guest boots,
# wait for the trigger's announcement on the console, attach (that stops the
# guest), arm one hardware breakpoint per station (entry addresses, like
# faultline; handle_pte_fault is inlined, GDB resolves its inlined location),
# filter on CR2 == target at every station (the fault address; nothing else
# faults in between), send "go", and print at each stop what faultline reads
# there. Each station's commands belong to its own breakpoint, so every stop
# prints what is in scope there whatever order the stops come in; the last
# station kills the guest.
set pagination off
set confirm off
set print pretty off
set width 0
file @VMLINUX@
shell timeout 30 sh -c 'while IFS= read -r l; do case "$l" in FAULTLINE-TRIGGER*) echo "gdb-bench: $l"; date "+gdb-bench: announced-at %s.%N"; exit 0;; esac; done; echo "gdb-bench: no announcement"; exit 1' <@DIR@/con.out
target remote @DIR@/gdb.sock
hbreak *asm_exc_page_fault if $cr2 == @TARGET@
commands
  silent
  echo gdb-bench: station asm_exc_page_fault\n
  printf "cr2 %#lx cr3 %#lx cs %#lx eflags %#lx k_gs_base %#lx\n", $cr2, $cr3, $cs, $eflags, $k_gs_base
  x/6gx $rsp
  x/i *(unsigned long *)($rsp + 8)
  p ((struct pcpu_hot *)($k_gs_base + (unsigned long)&pcpu_hot))->current_task->pid
  p ((struct pcpu_hot *)($k_gs_base + (unsigned long)&pcpu_hot))->current_task->comm
  continue
end
hbreak *exc_page_fault if $cr2 == @TARGET@
commands
  silent
  echo gdb-bench: station exc_page_fault\n
  p/x error_code
  p/x *regs
  p ((struct pcpu_hot *)($gs_base + (unsigned long)&pcpu_hot))->current_task->pid
  continue
end
hbreak *do_user_addr_fault if $rdx == @TARGET@
commands
  silent
  echo gdb-bench: station do_user_addr_fault\n
  p regs
  p/x error_code
  p/x address
  continue
end
hbreak *lock_vma_under_rcu if $rsi == @TARGET@
commands
  silent
  echo gdb-bench: station lock_vma_under_rcu\n
  p mm
  p/x address
  continue
end
hbreak *handle_mm_fault if $rsi == @TARGET@
commands
  silent
  echo gdb-bench: station handle_mm_fault\n
  p vma
  p/x address
  p/x flags
  p (enum fault_flag)flags
  p regs
  continue
end
hbreak handle_pte_fault if $cr2 == @TARGET@
commands
  silent
  echo gdb-bench: station handle_pte_fault\n
  p/x *vmf
  echo gdb-bench: captured\n
  kill
end
shell printf 'go\n' >@DIR@/con.in
continue

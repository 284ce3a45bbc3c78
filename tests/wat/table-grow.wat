;; Grows a table a thousand elements at a time until the host refuses.
(core module $Hostile
  (import "libc" "memory" (memory 1))
  (table $t 1 funcref)
  (func (export "redact") (param i32 i32 i32 i32 i32 i32 i32) (result i32)
    (loop $more
      (br_if $more (i32.ne (table.grow $t (ref.null func) (i32.const 1000)) (i32.const -1))))
    unreachable)
)

;; Grows its memory a page at a time until the host refuses.
(core module $Hostile
  (import "libc" "memory" (memory 1))
  (func (export "redact") (param i32 i32 i32 i32 i32 i32 i32) (result i32)
    (loop $more (br_if $more (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    unreachable)
)

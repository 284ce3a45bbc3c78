;; Recurses without end (not a tail call), until the stack is exhausted.
(core module $Hostile
  (import "libc" "memory" (memory 1))
  (func $down (param i32) (result i32)
    (i32.add (call $down (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
  (func (export "redact") (param i32 i32 i32 i32 i32 i32 i32) (result i32)
    (drop (call $down (i32.const 0)))
    unreachable)
)

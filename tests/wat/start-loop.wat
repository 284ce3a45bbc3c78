;; Spins forever in its start function, so instantiating it never returns
;; on its own: the deadline must interrupt the instantiation.
(core module $Hostile
  (import "libc" "memory" (memory 1))
  (func $spin (loop $forever (br $forever)))
  (start $spin)
  (func (export "redact") (param i32 i32 i32 i32 i32 i32 i32) (result i32) unreachable)
)

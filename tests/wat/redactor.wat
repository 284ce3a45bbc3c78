;; A redactor component (world `redactor` of wasmtel:telemetry@0.2.0) around
;; one hostile core module. The tests put the core module (named $Hostile)
;; at the CORE marker below, and extra component imports at the IMPORTS one.
;;
;; The core module may import, from "libc": `memory` (the one memory) and
;; `realloc` (a bump allocator), and from "host": `log` (level, ptr, len).
;; It must export `redact`: the batch flattened to seven i32 (event count,
;; buffer ptr/len, paths ptr/len, fields ptr/len), returning a pointer to
;; the result, laid out as the canonical ABI says:
;;   result<list<finding>, plugin-error>: u8 tag at +0; ok: list ptr at +4,
;;   len at +8; err: u8 variant case at +4, string ptr at +8, len at +12.
;;   finding (28 bytes): field +0, start +4, end +8, rule-id ptr/len +12/+16,
;;   replacement ptr/len +20/+24.
(component
  (import "wasmtel:telemetry/host@0.2.0" (instance $host
    (type $level (enum "debug" "info" "warn" "error"))
    (export "log-level" (type $level-e (eq $level)))
    (export "log" (func (param "level" $level-e) (param "message" string)))
  ))
  ;; @IMPORTS

  ;; The memory and its allocator, apart from the hostile module so the
  ;; lowered `log` can name the memory before that module is instantiated.
  (core module $Libc
    (memory (export "memory") 1)
    (global $heap (mut i32) (i32.const 65536))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $ptr i32) (local $end i32)
      (local.set $ptr
        (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                 (i32.sub (i32.const 0) (local.get 2))))
      (local.set $end (i32.add (local.get $ptr) (local.get 3)))
      (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
        (then
          (if (i32.eq (memory.grow
                        (i32.sub (i32.shr_u (i32.add (local.get $end) (i32.const 65535)) (i32.const 16))
                                 (memory.size)))
                      (i32.const -1))
            (then unreachable))))
      (global.set $heap (local.get $end))
      (local.get $ptr))
  )
  (core instance $libc (instantiate $Libc))
  (core func $log (canon lower (func $host "log") (memory $libc "memory")))

  ;; @CORE

  (core instance $main (instantiate $Hostile
    (with "libc" (instance $libc))
    (with "host" (instance (export "log" (func $log))))
  ))

  (type $field-part' (enum "value" "key"))
  (export $field-part "field-part" (type $field-part'))
  (type $path-step' (record
    (field "parent" (option u32)) (field "name-start" u32) (field "name-len" u32) (field "index" (option u32))))
  (export $path-step "path-step" (type $path-step'))
  (type $field' (record
    (field "event" u32) (field "part" $field-part) (field "path" u32) (field "text-start" u32) (field "text-len" u32)))
  (export $field "field" (type $field'))
  (type $batch' (record
    (field "event-count" u32) (field "buffer" (list u8)) (field "paths" (list $path-step)) (field "fields" (list $field))))
  (export $batch "batch" (type $batch'))
  (type $finding' (record
    (field "field" u32) (field "start" u32) (field "end" u32) (field "rule-id" string) (field "replacement" string)))
  (export $finding "finding" (type $finding'))
  (type $plugin-error' (variant
    (case "invalid-config" string) (case "query-failed" string) (case "invalid-input" string) (case "internal" string)))
  (export $plugin-error "plugin-error" (type $plugin-error'))
  (func $redact (param "batch" $batch) (result (result (list $finding) (error $plugin-error)))
    (canon lift (core func $main "redact") (memory $libc "memory") (realloc (func $libc "realloc"))))
  (export "redact" (func $redact))
)

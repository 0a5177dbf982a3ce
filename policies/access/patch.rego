# Patches: what a JSON Patch or FHIRPath Patch would change decides whether it may.
package smart.access

import data.smart.verdict

# METADATA
# title: patch_guard
# description: |
#   JSON Patch (an array of operations) and FHIRPath Patch (a Parameters resource) are checked:
#   no operation may address a guarded element. Any other body is refused (a PATCH without a
#   readable body never gets here: body_denial).
patch_guard(t, req, guarded, code) := verdict.allow if {
	is_array(req.body)
	every op in req.body {
		json_patch_op_safe(op, guarded)
	}
} else := verdict.allow if {
	req.body.resourceType == "Parameters"
	every p in object.get(req.body, "parameter", []) {
		fhirpath_patch_op_safe(t, p, guarded)
	}
} else := verdict.deny(403, code, "the patch would change elements that decide who may see this resource")

# A JSON Patch operation addresses a named top-level element (never the whole document, "" or
# "/"), and neither its target nor its source is guarded.
json_patch_op_safe(op, guarded) if {
	json_pointer_element_safe(op.path, guarded)
	not json_patch_from_unsafe(op, guarded)
}

json_patch_from_unsafe(op, guarded) if {
	op.from
	not json_pointer_element_safe(op.from, guarded)
}

json_pointer_element_safe(pointer, guarded) if {
	is_string(pointer)
	startswith(pointer, "/")
	first := split(substring(pointer, 1, -1), "/")[0]
	first != ""
	not first in guarded
}

# A FHIRPath Patch path is accepted only in the plain form Type.element(.element)*: indexers,
# functions and quoting could otherwise reach a guarded element under another spelling.
fhirpath_patch_op_safe(t, p, guarded) if {
	paths := [part.valueString | some part in p.part; part.name == "path"]
	count(paths) == 1
	startswith(paths[0], concat("", [t, "."]))
	regex.match(`^[A-Z][A-Za-z]*(\.[a-z][A-Za-z0-9]*)+$`, paths[0])
	element := split(paths[0], ".")[1]
	not element in guarded
	names := [part.valueString | some part in p.part; part.name == "name"]
	every n in names {
		not n in guarded
	}
}

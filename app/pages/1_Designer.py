"""Designer: pick or upload a design, see it drawn, edit its YAML, validate, download YAML/JSON/BPMN."""

from __future__ import annotations

import hashlib

import streamlit as st

import designs
from app import auth
from app.support import UPLOAD_TYPES, check_yaml, exports, upload_to_yaml
from engine.errors import DefinitionError
from engine.render import to_dot

st.set_page_config(page_title="Designer · waooaw", layout="wide")
principal = auth.require_principal()  # the sign-in page (or the demo persona) before anything else
st.title("Designer")

LIBRARY, UPLOAD = "Library", "Upload a file"
source = st.radio("Source", [LIBRARY, UPLOAD], horizontal=True, key="designer_source")
if source == LIBRARY:
    name = st.selectbox("Design", designs.names(), key="designer_design")
    origin = f"designs/{name}.yaml"
    initial = designs.path(name).read_text(encoding="utf-8")
else:
    upload = st.file_uploader("Design file (YAML, JSON or BPMN 2.0)", type=UPLOAD_TYPES, key="designer_upload")
    if upload is None:
        st.info("Upload a design file to see and edit it.")
        st.stop()
    data = upload.getvalue()
    origin = f"{upload.name}#{hashlib.sha1(data).hexdigest()[:8]}"
    try:
        initial = upload_to_yaml(upload.name, data)
    except DefinitionError as exc:
        st.error(f"{upload.name} does not load:\n\n" + "\n".join(f"- {p}" for p in exc.problems))
        st.stop()

# The edited text lives in the editor's own widget state, one per origin: a form only updates it on submit.
editor_key = f"designer_text:{origin}"
text = st.session_state.get(editor_key, initial)
checked = check_yaml(text, origin.split("#")[0])
last_good: dict[str, object] = st.session_state.setdefault("designer_last_good", {})
if checked.definition is not None:
    last_good[origin] = checked.definition

drawing, side = st.columns([3, 2])
with drawing:
    shown = checked.definition or last_good.get(origin)
    if shown is not None:
        node_ids = [n.id for n in shown.all_nodes()]
        marked = st.multiselect("Highlight nodes", node_ids, key=f"designer_highlight:{origin}")
        st.graphviz_chart(to_dot(shown, highlight=[m for m in marked if m in node_ids]), width="stretch")
        if checked.definition is None:
            st.caption("The last version that loaded; fix the errors to see your edits.")

with side:
    if checked.definition is None:
        st.error(f"The design does not load ({len(checked.errors)} error(s)):\n\n"
                 + "\n".join(f"- {p}" for p in checked.errors))
    elif checked.errors:
        st.error(f"{len(checked.errors)} error(s): the engine would refuse this design.")
    else:
        warnings = len(checked.problems)
        st.success(f"Valid: {len(checked.definition.all_nodes())} nodes"
                   + (f", {warnings} warning(s)." if warnings else "."))
    if checked.problems:
        st.dataframe(checked.table(), hide_index=True, key="designer_problems")

    with st.form(f"editor:{origin}"):
        st.text_area("YAML", value=initial, height=420, key=editor_key)
        st.form_submit_button("Validate and draw", type="primary")
    if st.button("Revert to the original", disabled=text == initial):
        del st.session_state[editor_key]
        st.rerun()

    if checked.definition is not None:
        stem = checked.definition.id
        cols = st.columns(3)
        cols[0].download_button("YAML", text, file_name=f"{stem}.yaml", mime="application/yaml")
        files = exports(checked.definition)
        json_name, json_text = files["JSON"]
        cols[1].download_button("JSON", json_text, file_name=json_name, mime="application/json")
        bpmn_name, bpmn_text = files["BPMN"]
        if bpmn_name:
            cols[2].download_button("BPMN", bpmn_text, file_name=bpmn_name, mime="application/xml")
        else:
            cols[2].caption(bpmn_text)

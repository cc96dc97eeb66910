"""Bus: per-topic numbers of the message bus (published, delivered, pending, parked) and its dead letters."""

from __future__ import annotations

import os

import streamlit as st

from app.chrome import page
from app.operations import engine_messages
from engine.bus import ENV, BusError, connect_bus

ctx = page("Message bus", ":material/hub:")

st.subheader("Messages in the engine")
st.caption("BPMN messages the engine's instances threw and the correlations it delivered (Send a message on the "
           "Instance page, message end and throw events), newest first, from its audit and history tables.")
messages = engine_messages(ctx.engine)
if messages.empty:
    st.info("No message thrown or correlated yet.")
else:
    st.dataframe(messages, hide_index=True, key="bus_engine_messages")

st.subheader("Bus topics")
url = os.environ.get(ENV, "")
if not url:
    st.caption(f"The in-process bus of this app (its engine correlates messages directly, shown above). Set {ENV}="
               "redis://host:6379/0 to watch a Redis Streams bus's topics (start events, external tasks, answers).")
try:
    bus = connect_bus(url)
except BusError as exc:
    st.error(f"{ENV}={url!r}: {exc}")
    st.stop()

stats = bus.stats()
if stats.empty:
    st.info("No messages on the bus yet. Topics appear when a start event, a correlation message, an external "
            "task or an answer is published.")
    st.stop()

totals = stats[["published", "delivered", "acked", "pending", "parked"]].sum()
for column, (name, value) in zip(st.columns(5), totals.items(), strict=True):
    column.metric(name, f"{int(value):,}")
st.dataframe(stats, hide_index=True, use_container_width=True)
st.bar_chart(stats.set_index("topic")[["acked", "pending", "waiting", "parked"]], horizontal=True, stack=True,
             color=["#5b8c5a", "#e3a008", "#c9d3de", "#c0392b"])  # done, in hand, queued, dead

parked = stats[stats["parked"] > 0]["topic"].tolist()
st.subheader("Dead letters")
if not parked:
    st.success("Nothing parked: every message was handled or is on its way.")
else:
    topic = st.selectbox("Topic", parked)
    letters = bus.dead_letters(topic)
    st.dataframe([{k: v for k, v in d.items() if k != "entry"} for d in letters], hide_index=True,
                 use_container_width=True)
    if st.button(f"Replay {len(letters)} message(s) on {topic}", help="after fixing their cause"):
        st.toast(f"replayed {bus.replay(topic)} message(s)")
        st.rerun()

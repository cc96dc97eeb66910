"""Bus: per-topic numbers of the message bus (published, delivered, pending, parked) and its dead letters."""

from __future__ import annotations

import os

import streamlit as st

from engine.bus import ENV, BusError, connect_bus

st.set_page_config(page_title="Bus · waooaw", layout="wide")
st.title("Message bus")

url = os.environ.get(ENV, "")
try:
    bus = connect_bus(url)
except BusError as exc:
    st.error(f"{ENV}={url!r}: {exc}")
    st.stop()
st.caption(f"{bus!r} — set {ENV}=redis://host:6379/0 to watch the Redis Streams bus; the in-process bus "
           "shows this app's own messages.")

stats = bus.stats()
if stats.empty:
    st.info("No messages yet. Topics appear when a start event, a correlation message, an external task or an "
            "answer is published.")
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

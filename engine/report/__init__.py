"""The change-control record (issue 12): built from the journal alone (source.py reads the
runs, build.py makes the JSON document of schemas/report.schema.json, devices.py says what
each device was left in), rendered as JSON, Markdown and one printable HTML file
(render.py, markdown.py, html.py, timeline.py)."""

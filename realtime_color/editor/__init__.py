"""``rtcolor edit``: place color hints on a picture, a video's shots or a live view, in the browser.

    inputs.py    what is being edited: a picture, a video (its frames and shots), a live source
    session.py   the hints being edited, the previews made with them, the suggested colors
    jobs.py      the "colorize" action: the real ``image`` / ``colorize`` job with the hints
    server.py    the local HTTP server (token, Host and Origin on every request) and its routes
    static/      the page: index.html, editor.js, editor.css

Nothing here imports the CLI; the command (``cli/edit.py``) builds the colorizer and calls ``serve``.
"""

"""Read a page's form the way a browser would, so journey tests fill in only what a user types.

`form_data(response)` gives the values a browser would submit untouched (prefilled inputs,
checked boxes and radios, selected options; no buttons); `options(response, name)` lists a
select's choices as (value, label).
"""

from html.parser import HTMLParser


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._form: dict | None = None
        self._select: str | None = None
        self._option: dict | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("method", "get").lower() == "post":
            self._form = {"values": {}, "options": {}, "action": a.get("action", "")}
            self.forms.append(self._form)
        if self._form is None:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            if kind in ("submit", "button", "image", "reset"):
                return
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self._form["values"][name] = a.get("value", "on")
                return
            self._form["values"][name] = a.get("value", "")
        elif tag == "select" and name:
            self._select = name
            self._form["options"][name] = []
        elif tag == "option" and self._select:
            self._option = {"value": a.get("value"), "label": "", "selected": "selected" in a}
        elif tag == "textarea" and name:
            self._textarea = name
            self._form["values"][name] = ""

    def handle_data(self, data):
        if self._option is not None:
            self._option["label"] += data
        elif self._textarea and self._form is not None:
            self._form["values"][self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "option" and self._option is not None and self._form is not None:
            option = self._option
            value = option["value"] if option["value"] is not None else option["label"].strip()
            self._form["options"][self._select].append((value, option["label"].strip()))
            if option["selected"] or self._select not in self._form["values"]:
                self._form["values"][self._select] = value
            self._option = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            if self._form is not None and self._textarea:
                # Browsers drop the newline that follows <textarea>.
                text = self._form["values"][self._textarea]
                self._form["values"][self._textarea] = text.removeprefix("\n")
            self._textarea = None
        elif tag == "form":
            self._form = None


def _parse(response, index: int) -> dict:
    parser = _FormParser()
    parser.feed(response.content.decode())
    # The page header holds the language switcher and the logout form; content forms follow.
    content = [f for f in parser.forms if not ({"i18n", "logout"} & set(f["action"].split("/")))]
    return content[index]


def form_data(response, index: int = 0) -> dict[str, str]:
    """What the page's `index`-th content form would submit as it stands."""
    values = dict(_parse(response, index)["values"])
    values.pop("csrfmiddlewaretoken", None)
    return values


def options(response, name: str, index: int = 0) -> list[tuple[str, str]]:
    """The (value, label) choices of the select `name` in the `index`-th content form."""
    return _parse(response, index)["options"][name]

"""A full sample issue of a weekly AI briefing, in German and in English.

The model issue of the renderer: a lead story, the photo of the day, a second story,
tools, short news and a background explainer, with the texts a real issue has: umlauts,
ampersands, long URLs, and one feed text that looks like HTML and must stay text.
Used by the render tests, the golden files and ``bench/render.py``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from newsdesk.plan import DigestPlan, Item, Link, Photo, Section

UNSUBSCRIBE_URL = "https://ki-briefing.example.org/abmelden?token=3f9a1c&list=weekly"
ONLINE_URL = "https://ki-briefing.example.org/archive/2026-12-07.html"
ISSUE_DATE = date(2026, 12, 7)
HTML_LOOKALIKE = "<b>not html</b>"
"""A feed text that looks like markup: it must reach the reader as these characters."""
IMAGE_URL = "https://images.ki-briefing.example.org/foto-des-tages/2026-12-07-kraniche-im-nebel.jpg"

LEAD_SOURCES_DE = (
    Link(
        "Der Spiegel",
        "Musk will xAI und X enger verzahnen",
        "https://www.spiegel.de/netzwelt/elon-musk-xai-x-fusion-a-4f2c9e1b.html",
    ),
    Link(
        "heise online",
        "Grok 4: Was das neue Modell kann – und was nicht",
        "https://www.heise.de/news/Grok-4-Was-das-neue-Modell-kann-und-was-nicht-10123456.html",
    ),
    Link(
        "Handelsblatt",
        "Investoren bewerten xAI mit 200 Milliarden Dollar",
        "https://www.handelsblatt.com/technik/it-internet/kuenstliche-intelligenz-investoren-bewerten-xai-mit-200-milliarden-dollar/100087654.html",
    ),
    Link(
        "The Verge",
        "Musk's xAI raises again as Grok ships to Teslas",
        "https://www.theverge.com/2026/12/5/24567890/xai-funding-grok-tesla-integration",
    ),
    Link(
        "Süddeutsche Zeitung",
        "Der Mann, der überall mitredet",
        "https://www.sueddeutsche.de/wirtschaft/elon-musk-ki-xai-kommentar-1.7123456",
    ),
    Link(
        "netzpolitik.org",
        "EU-Kommission prüft Grok nach DSA",
        "https://netzpolitik.org/2026/digital-services-act-eu-kommission-prueft-grok/",
    ),
    Link(
        "Reuters",
        "Tesla shareholders back xAI investment",
        "https://www.reuters.com/technology/tesla-shareholders-back-xai-investment-2026-12-04/",
    ),
)

LEAD_SOURCES_EN = (
    Link(
        "The Verge",
        "Musk's xAI raises again as Grok ships to Teslas",
        "https://www.theverge.com/2026/12/5/24567890/xai-funding-grok-tesla-integration",
    ),
    Link(
        "Reuters",
        "Tesla shareholders back xAI investment",
        "https://www.reuters.com/technology/tesla-shareholders-back-xai-investment-2026-12-04/",
    ),
    Link(
        "Financial Times",
        "Investors value xAI at $200bn",
        "https://www.ft.com/content/6b0d2a4e-9c1f-4c8a-8f3e-2d1b7a5e9f10",
    ),
    Link(
        "Ars Technica",
        "Grok 4 tested: strong at math, shaky on facts",
        "https://arstechnica.com/ai/2026/12/grok-4-tested-strong-at-math-shaky-on-facts/",
    ),
    Link(
        "Der Spiegel",
        "Musk will xAI und X enger verzahnen",
        "https://www.spiegel.de/netzwelt/elon-musk-xai-x-fusion-a-4f2c9e1b.html",
    ),
    Link(
        "Politico Europe",
        "Brussels opens DSA probe into Grok",
        "https://www.politico.eu/article/brussels-opens-digital-services-act-probe-into-grok/",
    ),
    Link(
        "Bloomberg",
        "Musk's AI & social media empire, explained",
        "https://www.bloomberg.com/news/articles/2026-12-04/musk-s-ai-and-social-media-empire-explained",
    ),
)


def _lead(language: str) -> Item:
    if language == "de":
        return Item(
            headline="Und immer wieder Elon Musk…",
            url=LEAD_SOURCES_DE[0].url,
            subheadline=(
                "xAI sammelt erneut Milliarden ein, Grok zieht in Teslas ein – und Brüssel "
                "schaut genauer hin."
            ),
            paragraphs=(
                "Kaum eine Woche vergeht ohne Schlagzeile aus Musks KI-Reich. Diesmal: Eine "
                "neue Finanzierungsrunde bewertet xAI mit rund 200 Milliarden Dollar, und "
                "Tesla-Aktionäre haben einer Beteiligung des Autobauers zugestimmt.",
                "Technisch liefert Grok 4 beachtliche Ergebnisse in Mathematik- und "
                "Programmier-Benchmarks. In unabhängigen Tests fällt das Modell aber durch "
                "frei erfundene Quellen auf – ein Problem, das bei einem Assistenten im Auto "
                "& in sozialen Netzen schwerer wiegt als im Labor.",
                "Die EU-Kommission prüft nun, ob die Einbindung von Grok in X gegen den "
                "Digital Services Act verstößt. Ein Sprecher nannte die Prüfung „Routine“; "
                f"in einem Feed-Text stand wörtlich {HTML_LOOKALIKE}, was hier als Text "
                "erscheinen muss.",
            ),
            why=(
                "Musk bündelt Daten aus X, Tesla und xAI – ein Vorteil, den kaum ein "
                "Konkurrent hat.",
                "Die DSA-Prüfung ist der erste Test, wie Europa generative KI in großen "
                "Plattformen reguliert.",
                "Für Unternehmen heißt das: Grok-Integrationen vorerst mit Vorsicht planen.",
            ),
            sources=LEAD_SOURCES_DE,
            story_id=101,
            picked=True,
        )
    return Item(
        headline="Elon Musk, again and again…",
        url=LEAD_SOURCES_EN[0].url,
        subheadline=(
            "xAI raises billions once more, Grok moves into Teslas – and Brussels takes a "
            "closer look."
        ),
        paragraphs=(
            "Hardly a week goes by without a headline from Musk's AI empire. This time a new "
            "funding round values xAI at about $200 billion, and Tesla shareholders have "
            "approved an investment by the carmaker.",
            "On paper Grok 4 does well on math and coding benchmarks. Independent tests, "
            "though, catch it inventing sources – a problem that weighs more in a car & on a "
            "social network than in a lab.",
            "The European Commission is now examining whether building Grok into X breaches "
            "the Digital Services Act. A spokesperson called it “routine”; one feed text "
            f"literally read {HTML_LOOKALIKE}, which must appear here as text.",
        ),
        why=(
            "Musk pools data from X, Tesla and xAI – an edge few rivals have.",
            "The DSA review is the first test of how Europe regulates generative AI inside "
            "large platforms.",
            "For companies: plan Grok integrations with care for now.",
        ),
        sources=LEAD_SOURCES_EN,
        story_id=101,
        picked=True,
    )


def _photo(language: str) -> Photo:
    de = language == "de"
    return Photo(
        image=IMAGE_URL,
        width=1200,
        height=800,
        alt=(
            "Kraniche fliegen im Morgennebel über einen See"
            if de
            else "Cranes flying over a lake in the morning mist"
        ),
        prompt=(
            "Ein Schwarm Kraniche über einem nebligen See in Brandenburg bei Sonnenaufgang, "
            "Fotografie, 85 mm, weiches Gegenlicht"
            if de
            else "A flock of cranes over a misty lake in Brandenburg at sunrise, photograph, "
            "85 mm, soft backlight"
        ),
        credit="Jana Müller & Bildmaschine v3",
        caption=(
            "Zugvögel im Dezember: Die Kraniche sind spät dran."
            if de
            else "Migrants in December: the cranes are late this year."
        ),
    )


def _second(language: str) -> Item:
    if language == "de":
        return Item(
            headline="Open-Source-Modelle holen auf",
            url="https://www.golem.de/news/open-source-ki-mistral-und-co-holen-auf-2612-190123.html",
            subheadline=(
                "Mistral, Qwen und Llama schließen die Lücke zu GPT & Co. schneller als erwartet."
            ),
            paragraphs=(
                "Neue Vergleiche zeigen: Offene Modelle liegen in vielen Aufgaben nur noch "
                "wenige Prozentpunkte hinter den besten geschlossenen Systemen.",
                "Für Behörden und Mittelständler, die Daten nicht außer Haus geben dürfen, "
                "wird lokaler Betrieb damit zur echten Option.",
            ),
            why=("Wer Daten im Haus behalten muss, hat jetzt ernsthafte Alternativen.",),
            sources=(
                Link(
                    "Golem",
                    "Mistral und Co. holen auf",
                    "https://www.golem.de/news/open-source-ki-mistral-und-co-holen-auf-2612-190123.html",
                ),
                Link(
                    "t3n",
                    "Welche offenen Modelle sich lohnen",
                    "https://t3n.de/news/offene-ki-modelle-vergleich-1654321/",
                ),
            ),
            story_id=102,
        )
    return Item(
        headline="Open-weight models are catching up",
        url="https://arstechnica.com/ai/2026/12/open-weight-models-close-the-gap/",
        subheadline="Mistral, Qwen and Llama close the gap to GPT & co. faster than expected.",
        paragraphs=(
            "New comparisons show open models only a few points behind the best closed "
            "systems on many tasks.",
            "For agencies and small firms that may not send data out of the house, running "
            "models locally becomes a real option.",
        ),
        why=("If your data has to stay in-house, you now have serious alternatives.",),
        sources=(
            Link(
                "Ars Technica",
                "Open-weight models close the gap",
                "https://arstechnica.com/ai/2026/12/open-weight-models-close-the-gap/",
            ),
            Link(
                "Golem",
                "Mistral und Co. holen auf",
                "https://www.golem.de/news/open-source-ki-mistral-und-co-holen-auf-2612-190123.html",
            ),
        ),
        story_id=102,
    )


TOOLS = (
    (
        "Ollama",
        "Lokale Sprachmodelle mit einem Befehl starten.",
        "Run language models locally with one command.",
        "https://ollama.com/",
    ),
    (
        "LM Studio",
        "Modelle laden, testen & vergleichen – ohne Terminal.",
        "Download, test & compare models – no terminal needed.",
        "https://lmstudio.ai/",
    ),
    (
        "Whisper.cpp",
        "Spracherkennung auf dem eigenen Rechner, auch für Deutsch.",
        "Speech recognition on your own machine.",
        "https://github.com/ggml-org/whisper.cpp",
    ),
    (
        "Open WebUI",
        "Eine Chat-Oberfläche für eigene Modelle im Browser.",
        "A chat interface for your own models in the browser.",
        "https://openwebui.com/",
    ),
    (
        "Docling",
        "Wandelt PDFs in sauberes Markdown für RAG-Pipelines.",
        "Turns PDFs into clean Markdown for RAG pipelines.",
        "https://github.com/docling-project/docling",
    ),
)

NEWS_DE = (
    (
        "OpenAI stellt neues Reasoning-Modell vor",
        "Es soll Rechenaufgaben schneller lösen und weniger kosten.",
        "Der Standard",
        "https://www.derstandard.at/story/3000000245678/openai-stellt-neues-reasoning-modell-vor",
    ),
    (
        "Bundestag berät KI-Aufsichtsgesetz",
        "Die Bundesnetzagentur soll zentrale Aufsicht werden; Länder & Verbände sind skeptisch.",
        "tagesschau.de",
        "https://www.tagesschau.de/inland/ki-aufsicht-bundesnetzagentur-100.html",
    ),
    (
        "Google bringt Gemini in Android Auto",
        "Der Assistent liest Nachrichten vor und plant Routen im Gespräch.",
        "Golem",
        "https://www.golem.de/news/gemini-android-auto-2612-190200.html",
    ),
    (
        "Meta öffnet Llama für Behörden",
        "Die US-Regierung darf die Modelle nun für Verwaltungszwecke nutzen.",
        "heise online",
        "https://www.heise.de/news/Meta-oeffnet-Llama-fuer-Behoerden-10123999.html",
    ),
    (
        "Anthropic eröffnet Büro in München",
        "Rund 100 Stellen sollen bis Ende 2027 entstehen.",
        "Handelsblatt",
        "https://www.handelsblatt.com/technik/anthropic-muenchen-buero/100088888.html",
    ),
    (
        "Nvidia-Chips: Exportregeln verschärft",
        "Neue US-Vorgaben treffen vor allem Rechenzentren in Asien.",
        "Reuters",
        "https://www.reuters.com/technology/nvidia-export-rules-tightened-2026-12-03/",
    ),
    (
        "KI erkennt Hautkrebs so gut wie Ärzte",
        "Eine Studie der Charité zeigt vergleichbare Trefferquoten bei Muttermalen.",
        "Ärzteblatt",
        "https://www.aerzteblatt.de/nachrichten/ki-hautkrebs-studie-charite",
    ),
    (
        "Apple kauft französisches KI-Start-up",
        "Der Kaufpreis liegt Berichten zufolge bei unter einer Milliarde Euro.",
        "Les Echos",
        "https://www.lesechos.fr/tech-medias/intelligence-artificielle/apple-rachete-une-start-up-francaise-2100123",
    ),
    (
        "Schulen testen KI-Tutoren",
        "In Hamburg & Bremen starten Pilotprojekte an 40 Schulen.",
        "Zeit Online",
        "https://www.zeit.de/digital/2026-12/ki-tutoren-schulen-hamburg-bremen",
    ),
    (
        f"Feed-Titel mit {HTML_LOOKALIKE}",
        "Manche Feeds schicken Markup im Titel; hier bleibt es Text.",
        "Beispiel-Feed",
        "https://feed.example.org/eintrag/markup-im-titel",
    ),
    (
        "Microsoft senkt Copilot-Preise",
        "Für kleine Teams kostet der Assistent künftig die Hälfte.",
        "The Decoder",
        "https://the-decoder.de/microsoft-senkt-copilot-preise/",
    ),
    (
        "Studie: KI-Texte schwer zu erkennen",
        "Selbst Fachleute liegen kaum besser als der Zufall.",
        "Spektrum",
        "https://www.spektrum.de/news/ki-texte-schwer-zu-erkennen/2201234",
    ),
)

NEWS_EN = (
    (
        "OpenAI unveils a new reasoning model",
        "It is meant to solve math problems faster and at lower cost.",
        "The Verge",
        "https://www.theverge.com/2026/12/3/24560001/openai-new-reasoning-model",
    ),
    (
        "Germany debates an AI oversight law",
        "The network agency would supervise AI; states & industry groups are wary.",
        "Politico Europe",
        "https://www.politico.eu/article/germany-ai-oversight-law-bundesnetzagentur/",
    ),
    (
        "Google brings Gemini to Android Auto",
        "The assistant reads messages aloud and plans routes in conversation.",
        "9to5Google",
        "https://9to5google.com/2026/12/04/gemini-android-auto-rollout/",
    ),
    (
        "Meta opens Llama to government use",
        "US agencies may now use the models for administrative work.",
        "Reuters",
        "https://www.reuters.com/technology/meta-opens-llama-government-use-2026-12-02/",
    ),
    (
        "Anthropic opens a Munich office",
        "About 100 jobs are planned by the end of 2027.",
        "TechCrunch",
        "https://techcrunch.com/2026/12/05/anthropic-opens-munich-office/",
    ),
    (
        "Nvidia chip export rules tightened",
        "New US rules mostly hit data centers in Asia.",
        "Bloomberg",
        "https://www.bloomberg.com/news/articles/2026-12-03/nvidia-chip-export-rules-tightened",
    ),
    (
        "AI spots skin cancer as well as doctors",
        "A Charité study shows comparable hit rates on moles.",
        "Nature",
        "https://www.nature.com/articles/s41591-026-01234-5",
    ),
    (
        "Apple buys a French AI start-up",
        "The price is reportedly below one billion euros.",
        "Les Echos",
        "https://www.lesechos.fr/tech-medias/intelligence-artificielle/apple-rachete-une-start-up-francaise-2100123",
    ),
    (
        "Schools try AI tutors",
        "Hamburg & Bremen start pilots at 40 schools.",
        "The Guardian",
        "https://www.theguardian.com/education/2026/dec/05/germany-schools-ai-tutors-pilot",
    ),
    (
        f"Feed title with {HTML_LOOKALIKE}",
        "Some feeds send markup in titles; here it stays text.",
        "Example Feed",
        "https://feed.example.org/entry/markup-in-title",
    ),
    (
        "Microsoft cuts Copilot prices",
        "Small teams will pay half as much for the assistant.",
        "The Decoder",
        "https://the-decoder.com/microsoft-cuts-copilot-prices/",
    ),
    (
        "Study: AI text is hard to detect",
        "Even experts barely beat chance.",
        "Scientific American",
        "https://www.scientificamerican.com/article/ai-text-is-hard-to-detect/",
    ),
)


def _background(language: str) -> Item:
    if language == "de":
        return Item(
            headline="Was ist eigentlich ein „Reasoning-Modell“?",
            paragraphs=(
                "Reasoning-Modelle rechnen, bevor sie antworten: Sie schreiben intern "
                "Zwischenschritte auf, prüfen sie und verwerfen Irrwege. Das kostet Zeit & "
                "Rechenleistung, macht Antworten auf schwierige Fragen aber deutlich besser.",
                "Der Trick ist nicht neu – Forschende nennen ihn „Chain of Thought“. Neu ist, "
                "dass die Modelle gezielt darauf trainiert werden, mit Belohnungen für "
                "richtige Endergebnisse statt für hübsche Sätze.",
                "Für den Alltag heißt das: Für eine E-Mail reicht ein schnelles Modell; für "
                "eine Steuerfrage oder ein Stück Code lohnt sich das Warten.",
            ),
            sources=(
                Link(
                    "Spektrum",
                    "Wie KI-Modelle denken lernen",
                    "https://www.spektrum.de/news/wie-ki-modelle-denken-lernen/2209876",
                ),
                Link(
                    "arXiv",
                    "Chain-of-Thought Prompting Elicits Reasoning in Large Language Models",
                    "https://arxiv.org/abs/2201.11903",
                ),
                Link(
                    "The Decoder",
                    "Reasoning-Modelle im Vergleich",
                    "https://the-decoder.de/reasoning-modelle-im-vergleich/",
                ),
            ),
            story_id=130,
        )
    return Item(
        headline="What is a “reasoning model”, anyway?",
        paragraphs=(
            "Reasoning models think before they answer: they write down intermediate steps, "
            "check them and drop dead ends. That costs time & compute, but makes answers to "
            "hard questions much better.",
            "The trick is not new – researchers call it “chain of thought”. What is new is "
            "that models are trained for it, rewarded for correct final answers rather than "
            "for pretty sentences.",
            "In practice: a quick model is fine for an email; for a tax question or a piece "
            "of code, the wait pays off.",
        ),
        sources=(
            Link(
                "Quanta",
                "How AI models learn to reason",
                "https://www.quantamagazine.org/how-ai-models-learn-to-reason-20261201/",
            ),
            Link(
                "arXiv",
                "Chain-of-Thought Prompting Elicits Reasoning in Large Language Models",
                "https://arxiv.org/abs/2201.11903",
            ),
            Link(
                "The Decoder",
                "Reasoning models compared",
                "https://the-decoder.com/reasoning-models-compared/",
            ),
        ),
        story_id=130,
    )


TITLES = {
    "de": (
        "Top-Thema",
        "Foto des Tages",
        "Auch wichtig",
        "Tools der Woche",
        "Kurz notiert",
        "Hintergrund",
    ),
    "en": (
        "Lead story",
        "Photo of the day",
        "Also important",
        "Tools of the week",
        "In brief",
        "Background",
    ),
}


def sample_plan(language: str = "de") -> DigestPlan:
    """The full model issue: every section kind, every field a template shows."""
    de = language == "de"
    lead, photo, second, tools, news, background = TITLES[language]
    return DigestPlan(
        name="KI-Briefing" if de else "The AI Briefing",
        language=language,
        issue_date=ISSUE_DATE,
        subject=(
            "KI-Briefing: Und immer wieder Elon Musk…"
            if de
            else "The AI Briefing: Elon Musk, again and again…"
        ),
        preheader=(
            "xAI, Grok & die EU – dazu offene Modelle, fünf Tools und zwölf Kurzmeldungen."
            if de
            else "xAI, Grok & the EU – plus open models, five tools and twelve short news."
        ),
        intro=(
            (
                "Guten Morgen! Diese Woche dreht sich (mal wieder) viel um einen Mann. "
                "Dazu: warum offene Modelle aufholen und was ein Reasoning-Modell ist.",
            )
            if de
            else (
                "Good morning! This week is (once more) a lot about one man. Also: why open "
                "models are catching up, and what a reasoning model is.",
            )
        ),
        sections=(
            Section("lead", lead, "featured", items=(_lead(language),), min_items=1),
            Section("photo", photo, "photo", photo=_photo(language)),
            Section("second", second, "featured", items=(_second(language),)),
            Section(
                "tools",
                tools,
                "tools",
                items=tuple(
                    Item(headline=name, paragraphs=(text_de if de else text_en,), url=url)
                    for name, text_de, text_en, url in TOOLS
                ),
            ),
            Section(
                "news",
                news,
                "list",
                items=tuple(
                    Item(
                        headline=title,
                        paragraphs=(text,),
                        url=url,
                        sources=(Link(outlet, title, url),),
                        story_id=200 + n,
                    )
                    for n, (title, text, outlet, url) in enumerate(NEWS_DE if de else NEWS_EN)
                ),
            ),
            Section("background", background, "background", items=(_background(language),)),
        ),
    )


def with_sections(plan: DigestPlan, *sections: Section) -> DigestPlan:
    """The plan with other sections (for tests that need an empty or huge one)."""
    return replace(plan, sections=sections)


def all_read_on_links(plan: DigestPlan) -> list[Link]:
    """Every link of a featured story's "Read on" list and of the explainers' sources."""
    return [
        link
        for section in plan.sections
        if section.kind in ("featured", "background")
        for item in section.items
        for link in item.sources
    ]

"""Word and phrase lists the corpus generator draws article text from (English, Russian, Spanish, Portuguese).

Phrases are written already inflected for the slot they fill, so that the generated sentences read as
grammatical text in every language. Data only: no logic here.
"""

from __future__ import annotations

# Disciplines: (set spec, English name, Russian name).
DISCIPLINES: tuple[tuple[str, str, str], ...] = (
    ("social-sciences:political-science", "Political Science", "Политология"),
    ("social-sciences:economics", "Economics", "Экономика"),
    ("social-sciences:sociology", "Sociology", "Социология"),
    ("humanities:history", "History", "История"),
    ("humanities:linguistics", "Linguistics", "Языкознание"),
    ("humanities:philosophy", "Philosophy", "Философия"),
    ("natural-sciences:ecology", "Ecology", "Экология"),
    ("natural-sciences:chemistry", "Chemistry", "Химия"),
    ("natural-sciences:physics", "Physics", "Физика"),
    ("natural-sciences:geology", "Geology", "Геология"),
    ("engineering:computer-science", "Computer Science", "Информатика"),
    ("engineering:materials", "Materials Science", "Материаловедение"),
    ("medicine:public-health", "Public Health", "Общественное здоровье"),
    ("medicine:cardiology", "Cardiology", "Кардиология"),
    ("education", "Education", "Образование"),
)

JOURNAL_PATTERNS_EN = (
    "Bulletin of {place} State University. Series {field}",
    "Journal of {field} Research",
    "{place} Review of {field}",
    "Proceedings of the {place} Academy. {field}",
    "Studies in {field} and Society",
    "Annals of {field}",
    "{field}: Theory and Practice",
    "International Journal of {field}",
)
JOURNAL_PATTERNS_RU = (
    "Вестник {place_ru} государственного университета. Серия «{field_ru}»",
    "Известия {place_ru} академии. {field_ru}",
    "Вопросы: {field_ru}",
)
PLACES = (
    ("Irkutsk", "Иркутского"), ("Tomsk", "Томского"), ("Novosibirsk", "Новосибирского"),
    ("Kazan", "Казанского"), ("Ural", "Уральского"), ("Samara", "Самарского"),
    ("Voronezh", "Воронежского"), ("Altai", "Алтайского"), ("Perm", "Пермского"),
    ("Baikal", "Байкальского"), ("Kuban", "Кубанского"), ("Tver", "Тверского"),
)
PUBLISHERS = (
    "{place} State University", "{place} Scientific Centre", "Academy of Sciences, {place} Branch",
    "{place} University Press",
)

# --- English ---------------------------------------------------------------------------------------
EN_TOPICS = (
    "regional integration", "institutional change", "labour migration", "urban governance",
    "public trust", "fiscal decentralisation", "cross-border cooperation", "energy transition",
    "language contact", "historical memory", "soil contamination", "permafrost degradation",
    "wildfire dynamics", "catalytic oxidation", "thin-film deposition", "grain boundary diffusion",
    "neural network compression", "graph partitioning", "distributed consensus", "code review practice",
    "hypertension management", "vaccination uptake", "rural healthcare access", "teacher retention",
    "digital literacy", "student assessment", "informal employment", "housing affordability",
    "river basin management", "seismic hazard", "alloy corrosion", "polymer degradation",
    "legal pluralism", "party competition", "electoral turnout", "media framing",
    "archival practice", "religious revival", "dialect levelling", "translation norms",
)
EN_OBJECTS = (
    "the Siberian regions", "small and medium enterprises", "municipal councils", "secondary schools",
    "the Baikal region", "Arctic settlements", "industrial cities", "border municipalities",
    "regional universities", "primary care clinics", "river ecosystems", "mining districts",
    "online communities", "open-source projects", "agricultural cooperatives", "local newspapers",
    "multilingual families", "young researchers", "post-industrial towns", "coastal communities",
)
EN_METHODS = (
    "a mixed-methods design", "panel regression", "semi-structured interviews", "discourse analysis",
    "a difference-in-differences approach", "field sampling", "X-ray diffraction", "density functional theory",
    "a randomised controlled trial", "a retrospective cohort analysis", "corpus methods", "archival research",
    "agent-based simulation", "spatial statistics", "a systematic literature review", "content analysis",
    "Monte Carlo simulation", "finite element modelling", "structural equation modelling", "participant observation",
)
EN_SOURCES = (
    "official statistics for 2005-2019", "a survey of 1,200 respondents", "regional archives",
    "satellite imagery", "laboratory measurements", "court records", "parliamentary debates",
    "hospital registries", "school performance data", "a national household panel", "press coverage",
    "field observations over three seasons", "an annotated corpus of 2 million words", "customs data",
)
EN_FINDINGS = (
    "the effect is strongest where local institutions are weak",
    "the observed differences are largely explained by income",
    "cooperation remains declarative rather than pragmatic",
    "the relationship is non-linear and depends on scale",
    "early intervention reduces the adverse outcomes considerably",
    "the proposed method outperforms the baseline by a wide margin",
    "regional variation exceeds the variation between countries",
    "formal rules matter less than informal practices",
    "the process accelerated markedly after 2014",
    "the results are robust to alternative specifications",
    "exposure declines with distance from the source",
    "the new model reproduces the measured values within experimental error",
)
EN_ADJECTIVES = (
    "Comparative", "Empirical", "Historical", "Spatial", "Longitudinal", "Experimental", "Critical",
    "Quantitative", "Qualitative", "Institutional", "Structural", "Regional",
)
EN_TITLE_PATTERNS = (
    "{Topic} in {object}: {adj} Evidence from {source}",
    "The {Topic} of {object}: A {adj} Study",
    "{adj} Perspectives on {topic} in {object}",
    "Rethinking {topic}: {object} after {year}",
    "{Topic} and {topic2} in {object}",
    "Measuring {topic} with {method}",
)
EN_SENTENCES = (
    "The paper examines {topic} in {object}.",
    "The study is based on {source}.",
    "Using {method}, the authors analyse {topic2} and its relation to {topic}.",
    "Particular attention is paid to {object} and to the role of {topic2}.",
    "The results show that {finding}.",
    "It is also shown that {finding2}.",
    "The authors conclude that {finding}, which has implications for {topic2}.",
    "The article discusses the limitations of {method} for the study of {topic}.",
    "Previous research on {topic} has rarely considered {object}.",
    "The findings contribute to the debate on {topic2} and suggest directions for further work.",
)
EN_GIVEN = (
    "Ilya", "Anna", "Sergey", "Elena", "Dmitry", "Olga", "Alexei", "Maria", "Nikolai", "Tatiana",
    "John", "Emily", "Michael", "Sarah", "David", "Laura", "Wei", "Li", "Hiroshi", "Yuki",
    "Carlos", "Lucia", "Pedro", "Ana", "Jonas", "Katrin", "Pierre", "Claire", "Ahmed", "Fatima",
)
EN_SURNAMES = (
    "Oleynikov", "Yakimova", "Ivanov", "Petrova", "Smirnov", "Kuznetsova", "Popov", "Sokolova",
    "Lebedev", "Novikova", "Morozov", "Volkova", "Smith", "Johnson", "Brown", "Taylor", "Wilson",
    "Zhang", "Wang", "Chen", "Tanaka", "Suzuki", "Garcia", "Fernandez", "Silva", "Santos",
    "Müller", "Schmidt", "Dubois", "Laurent", "Hassan", "Rahman", "O'Brien", "Kowalski",
)
DEPARTMENTS_EN = (
    "Department of Political Science", "Department of History", "Department of Economics",
    "Institute of Ecology", "Laboratory of Catalysis", "Department of Computer Science",
    "Faculty of Medicine", "Department of Linguistics", "Institute of Geology",
    "Department of Physics", "School of Education", "Department of Sociology",
)
CITIES = (
    ("Irkutsk", "664003", "RU", "Russian Federation"), ("Tomsk", "634050", "RU", "Russian Federation"),
    ("Novosibirsk", "630090", "RU", "Russian Federation"), ("Kazan", "420008", "RU", "Russian Federation"),
    ("Ulaanbaatar", "14200", "MN", "Mongolia"), ("Harbin", "150001", "CN", "China"),
    ("Sapporo", "060-0808", "JP", "Japan"), ("Madrid", "28040", "ES", "Spain"),
    ("São Paulo", "05508-000", "BR", "Brazil"), ("Berlin", "10117", "DE", "Germany"),
    ("Edinburgh", "EH8 9YL", "GB", "United Kingdom"), ("Lyon", "69007", "FR", "France"),
)
STREETS = ("1, K. Marx st.", "36, Lenin ave.", "2, Pirogov st.", "18, Kremlyovskaya st.", "7, University sq.")
EN_KEYWORDS_EXTRA = (
    "Siberia", "Russia", "Mongolia", "China", "Arctic", "Baikal", "Central Asia", "post-Soviet space",
    "machine learning", "sustainability", "climate change", "public policy", "inequality", "governance",
)

# --- Russian ---------------------------------------------------------------------------------------
RU_TOPICS = (  # nominative
    "региональная интеграция", "институциональное развитие", "трудовая миграция", "городское управление",
    "общественное доверие", "бюджетная децентрализация", "приграничное сотрудничество",
    "энергетический переход", "языковой контакт", "историческая память", "загрязнение почв",
    "деградация мерзлоты", "динамика лесных пожаров", "каталитическое окисление", "сжатие нейронных сетей",
    "доступность медицинской помощи", "цифровая грамотность", "неформальная занятость",
    "электоральная явка", "медийное освещение", "религиозное возрождение", "нормы перевода",
)
RU_TOPICS_GEN = (  # genitive
    "региональной интеграции", "институционального развития", "трудовой миграции", "городского управления",
    "общественного доверия", "бюджетной децентрализации", "приграничного сотрудничества",
    "энергетического перехода", "языкового контакта", "исторической памяти", "загрязнения почв",
    "деградации мерзлоты", "лесных пожаров", "каталитического окисления", "нейронных сетей",
    "медицинской помощи", "цифровой грамотности", "неформальной занятости", "электоральной явки",
    "религиозного возрождения", "переводческих норм",
)
RU_OBJECTS_PREP = (  # prepositional, after «в» / «на примере» uses genitive below
    "сибирских регионах", "малых и средних предприятиях", "муниципальных советах", "средних школах",
    "Байкальском регионе", "арктических поселениях", "промышленных городах", "приграничных муниципалитетах",
    "региональных университетах", "речных экосистемах", "горнодобывающих районах", "сельских территориях",
)
RU_OBJECTS_GEN = (
    "Иркутской области", "Республики Бурятия", "Красноярского края", "Томской области",
    "Забайкальского края", "Республики Саха (Якутия)", "Новосибирской области", "Алтайского края",
)
RU_METHODS_INS = (  # instrumental, after «с помощью» uses genitive; these follow «методом»/«на основе»
    "смешанного дизайна", "панельной регрессии", "полуструктурированных интервью", "дискурс-анализа",
    "полевых наблюдений", "рентгеноструктурного анализа", "теории функционала плотности",
    "ретроспективного когортного анализа", "корпусных методов", "архивных источников",
    "агентного моделирования", "пространственной статистики", "контент-анализа",
    "метода конечных элементов", "моделирования структурными уравнениями",
)
RU_FINDINGS = (
    "эффект сильнее там, где местные институты слабы",
    "наблюдаемые различия в основном объясняются уровнем дохода",
    "сотрудничество носит преимущественно декларативный характер",
    "зависимость нелинейна и определяется масштабом",
    "раннее вмешательство существенно снижает неблагоприятные последствия",
    "предложенный метод заметно превосходит базовый",
    "региональные различия превышают межстрановые",
    "неформальные практики значат больше, чем формальные правила",
    "процесс заметно ускорился после 2014 года",
    "результаты устойчивы к альтернативным спецификациям",
)
RU_TITLE_PATTERNS = (
    "{Topic} в {object_prep}: опыт {object_gen}",
    "Проблемы {topic_gen} на примере {object_gen}",
    "{Topic} как фактор {topic_gen2}",
    "К вопросу о роли {topic_gen} в {object_prep}",
    "Особенности {topic_gen} в {object_prep} (по материалам {year} г.)",
)
RU_SENTENCES = (
    "В статье рассматривается {topic} в {object_prep}.",
    "Исследование основано на данных {object_gen} за {year1}–{year2} гг.",
    "На основе {method} проанализированы особенности {topic_gen}.",
    "Особое внимание уделено проблемам {topic_gen2} в {object_prep}.",
    "Показано, что {finding}.",
    "Авторы приходят к выводу, что {finding2}.",
    "Полученные результаты могут быть использованы при разработке региональной политики в области {topic_gen}.",
    "Обсуждаются ограничения {method} применительно к изучению {topic_gen2}.",
)
RU_GIVEN = (
    ("Илья Васильевич", "И. В."), ("Анна Алексеевна", "А. А."), ("Сергей Петрович", "С. П."),
    ("Елена Николаевна", "Е. Н."), ("Дмитрий Андреевич", "Д. А."), ("Ольга Викторовна", "О. В."),
    ("Алексей Михайлович", "А. М."), ("Мария Сергеевна", "М. С."), ("Николай Иванович", "Н. И."),
    ("Татьяна Юрьевна", "Т. Ю."),
)
RU_SURNAMES = (
    ("Олейников", "Oleynikov"), ("Якимова", "Yakimova"), ("Иванов", "Ivanov"), ("Петрова", "Petrova"),
    ("Смирнов", "Smirnov"), ("Кузнецова", "Kuznetsova"), ("Попов", "Popov"), ("Соколова", "Sokolova"),
    ("Лебедев", "Lebedev"), ("Новикова", "Novikova"), ("Морозов", "Morozov"), ("Волкова", "Volkova"),
)
RU_GIVEN_LATIN = (
    "Ilya Vasilyevich", "Anna Alexeevna", "Sergey Petrovich", "Elena Nikolaevna", "Dmitry Andreevich",
    "Olga Viktorovna", "Alexei Mikhailovich", "Maria Sergeevna", "Nikolai Ivanovich", "Tatiana Yurievna",
)
RU_KEYWORDS_EXTRA = ("Сибирь", "Россия", "Байкал", "Арктика", "устойчивое развитие", "государственная политика")
DEPARTMENTS_RU = (
    "Кафедра политологии, истории и регионоведения", "Кафедра мировой истории и международных отношений",
    "Кафедра экономической теории", "Институт экологии", "Лаборатория катализа", "Кафедра информатики",
)

# --- Spanish and Portuguese (translated titles and abstracts) -------------------------------------
ES_TOPICS = (
    "la integración regional", "el cambio institucional", "la migración laboral", "la gobernanza urbana",
    "la confianza pública", "la cooperación transfronteriza", "la transición energética",
    "la memoria histórica", "la contaminación del suelo", "la degradación del permafrost",
    "la oxidación catalítica", "el acceso a la atención sanitaria", "la alfabetización digital",
    "el empleo informal", "la participación electoral", "la asequibilidad de la vivienda",
)
ES_OBJECTS = (
    "las regiones siberianas", "las pequeñas y medianas empresas", "los consejos municipales",
    "las escuelas secundarias", "los asentamientos árticos", "las ciudades industriales",
    "las universidades regionales", "los ecosistemas fluviales", "las comunidades costeras",
)
ES_SENTENCES = (
    "El artículo examina {topic} en {object}.",
    "El estudio se basa en datos recogidos entre {year1} y {year2}.",
    "Los resultados muestran que {topic2} depende en gran medida del contexto local.",
    "Se presta especial atención a {object} y al papel de {topic2}.",
    "Los autores concluyen que {topic} sigue siendo más declarativa que pragmática.",
    "Se discuten las implicaciones para futuras investigaciones sobre {topic2}.",
)
ES_TITLE_PATTERNS = (
    "{Topic} en {object}: evidencia comparada", "{Topic} y {topic2} en {object}",
    "Una perspectiva histórica sobre {topic} en {object}",
)
PT_TOPICS = (
    "a integração regional", "a mudança institucional", "a migração laboral", "a governança urbana",
    "a confiança pública", "a cooperação transfronteiriça", "a transição energética",
    "a memória histórica", "a contaminação do solo", "a degradação do permafrost",
    "a oxidação catalítica", "o acesso aos cuidados de saúde", "a literacia digital",
    "o emprego informal", "a participação eleitoral", "o custo da habitação",
)
PT_OBJECTS = (
    "as regiões siberianas", "as pequenas e médias empresas", "os conselhos municipais",
    "as escolas secundárias", "os povoados árticos", "as cidades industriais",
    "as universidades regionais", "os ecossistemas fluviais", "as comunidades costeiras",
)
PT_SENTENCES = (
    "O artigo examina {topic} em {object}.",
    "O estudo baseia-se em dados recolhidos entre {year1} e {year2}.",
    "Os resultados mostram que {topic2} depende fortemente do contexto local.",
    "Dá-se especial atenção a {object} e ao papel de {topic2}.",
    "Os autores concluem que {topic} permanece mais declarativa do que pragmática.",
    "Discutem-se as implicações para investigações futuras sobre {topic2}.",
)
PT_TITLE_PATTERNS = (
    "{Topic} em {object}: evidência comparada", "{Topic} e {topic2} em {object}",
    "Uma perspectiva histórica sobre {topic} em {object}",
)
LICENSES = (
    ("https://creativecommons.org/licenses/by/4.0/", "This work is licensed under a Creative Commons Attribution 4.0 International License."),
    ("https://creativecommons.org/licenses/by-nc/4.0/", "This work is licensed under a Creative Commons Attribution-NonCommercial 4.0 International License."),
)
ARTICLE_TYPES = ("research-article",) * 8 + ("review-article", "brief-report", "case-report", "editorial")

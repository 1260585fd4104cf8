"""English stopwords excluded from concept lookup (shipped with kgemo: no NLTK download).

Close to the union KET used (NLTK's English list and spaCy's function words), without spaCy's content words
("serious", "empty", "bottom", "fire" carry meaning in conversation), plus the pieces that
:func:`kgemo.knowledge.text.tokenize` leaves from contractions ("nt", "ll", "ve", "re") and a few conversational
fillers ("oh", "uh", "yeah", "okay") that would otherwise pull in unrelated ConceptNet neighbours.
"""
from __future__ import annotations

__all__ = ["STOPWORDS"]

STOPWORDS: frozenset[str] = frozenset("""
a about above across after afterwards again against all almost alone along already also although always am among
amongst an and another any anyhow anyone anything anyway anywhere are aren around as at be became because become
becomes becoming been before beforehand behind being below beside besides between beyond both but by can cannot
could couldn d did didn do does doesn doing don done down due during each either else elsewhere enough etc even
ever every everyone everything everywhere except few for former formerly from further had hadn has hasn have haven
having he hence her here hereafter hereby herein hereupon hers herself him himself his how however i ie if in
indeed into is isn it its itself just ll m ma many may me meanwhile might mightn mine more moreover most mostly much
must mustn my myself namely neither nevertheless next no nobody none noone nor not nothing now nowhere nt o of off
often on once one only onto or other others otherwise our ours ourselves out over own per perhaps please rather re
s same say says several shan she should shouldn since so some somehow someone something sometime sometimes
somewhere still such t than that the their theirs them themselves then thence there thereafter thereby therefore
therein thereupon these they this those though through throughout thru thus to together too toward towards under
unless until up upon us ve very via was wasn we were weren what whatever when whence whenever where whereafter
whereas whereby wherein whereupon wherever whether which while whither who whoever whole whom whose why will with
within without won would wouldn y yet you your yours yourself yourselves
oh uh um yeah ok okay hey gonna wanna gotta
""".split())

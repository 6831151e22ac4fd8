"""Which topic each intent belongs to (reported by `python -m bot ask`)."""

TOPICS = ("recruitment", "warning_signs", "legal_rights", "life_skills", "get_help", "smalltalk", "out_of_scope", "danger")

TOPIC_OF_INTENT = {
    "greet": "smalltalk",
    "goodbye": "smalltalk",
    "thanks": "smalltalk",
    "bot_identity": "smalltalk",
    "privacy": "smalltalk",
    "affirm": "smalltalk",
    "deny": "smalltalk",
    "stop": "smalltalk",
    "job_offer": "recruitment",
    "recruitment_tactics": "recruitment",
    "online_relationship": "recruitment",
    "marriage_offer": "recruitment",
    "modelling_offer": "recruitment",
    "warning_signs": "warning_signs",
    "legal_rights": "legal_rights",
    "legal_aid": "legal_rights",
    "life_skills": "life_skills",
    "safe_migration": "life_skills",
    "get_help": "get_help",
    "danger": "danger",
    "out_of_scope": "out_of_scope",
    "nlu_fallback": "out_of_scope",
    "inform_country": "smalltalk",
}

-- The Rasa tracker store lives beside the gateway database.
CREATE DATABASE rasa OWNER safepassage;

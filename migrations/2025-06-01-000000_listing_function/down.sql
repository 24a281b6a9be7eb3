DROP FUNCTION list_children(text, text, text, text, integer);

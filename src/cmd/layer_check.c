/*
 * The program of the layer checks (CMakeLists.txt, pgw_layer_check): it
 * does nothing; linking it with one layer's whole library and only the
 * layers below fails when that layer calls upward.
 */
int main(void)
{
	return 0;
}
